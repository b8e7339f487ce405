# The dependency arrows of docs/design.md ("Dependency arrows"), checked on every build:
#   cmake -DSOURCE_DIR=<repo> -P cmake/CheckLayering.cmake
# For each area, the top-level directories its files may include from ("#include "dir/...").
# An include that runs against an arrow fails the build with file, line and the rule broken.
# Areas not listed (app, tests, bench) sit on top and may include anything.
cmake_minimum_required(VERSION 3.25)
set(allowed_base base)
set(allowed_wal base wal)
set(allowed_core base wal core)
set(allowed_archive base core archive)
set(allowed_auth base core auth)
set(allowed_events base wal core events)
set(allowed_net base wal core archive auth events net)
set(allowed_recon base core archive auth recon)
set(allowed_repl base wal core repl)
set(allowed_webhooks base webhooks)
set(allowed_cdc base core events repl webhooks cdc)

set(violations "")
foreach(area base wal core archive auth events net recon repl webhooks cdc)
  if(NOT IS_DIRECTORY "${SOURCE_DIR}/${area}")
    continue()
  endif()
  file(GLOB_RECURSE files "${SOURCE_DIR}/${area}/*.hpp" "${SOURCE_DIR}/${area}/*.cpp")
  foreach(file IN LISTS files)
    file(STRINGS "${file}" includes REGEX "^[ \t]*#[ \t]*include[ \t]+\"[a-z_]+/")
    foreach(line IN LISTS includes)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"([a-z_]+)/.*" "\\1" target "${line}")
      if(NOT target IN_LIST allowed_${area})
        file(RELATIVE_PATH relative "${SOURCE_DIR}" "${file}")
        string(APPEND violations "  ${relative}: ${line}  (${area}/ may include only: ${allowed_${area}})\n")
      endif()
    endforeach()
  endforeach()
endforeach()

if(violations)
  message(FATAL_ERROR "includes against the dependency arrows (docs/design.md):\n${violations}")
endif()
