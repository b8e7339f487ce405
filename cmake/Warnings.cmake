# Strict warnings for paycore's own targets only: link `paycore::warnings` privately.
add_library(paycore_warnings INTERFACE)
add_library(paycore::warnings ALIAS paycore_warnings)
target_compile_options(paycore_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wnon-virtual-dtor -Wcast-align
  -Wimplicit-fallthrough -Wmissing-declarations
  # -Wnull-dereference only where it is reliable: GCC 12 at -O3 reports paths inside
  # libstdc++ (streambuf, simdjson's inlined DOM) that cannot happen.
  $<$<NOT:$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>>:-Wnull-dereference>
  $<$<BOOL:${PAYCORE_WERROR}>:-Werror>
  # GCC 12 at -O2/-O3 reports impossible overlaps in std::string concatenation
  # (GCC bug 105329, fixed in 13): a false positive on correct code.
  $<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-restrict>)
if(PAYCORE_INVARIANTS)
  target_compile_definitions(paycore_warnings INTERFACE PAYCORE_INVARIANTS=1)
endif()
