# System libraries, all from Debian packages (scripts/setup installs them).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

pkg_check_modules(URING REQUIRED IMPORTED_TARGET liburing>=2.3)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash>=0.8.1)
find_package(simdjson 3.0 REQUIRED)
find_package(OpenSSL 3.0 REQUIRED)
find_package(CLI11 REQUIRED)
pkg_check_modules(TOMLPP REQUIRED IMPORTED_TARGET tomlplusplus>=3.3)
# Replication's NATS JetStream client (libnats-dev; pkg-config: its CMake file names a static
# library Debian does not ship). Linked always; used only with nats_url.
pkg_check_modules(NATS REQUIRED IMPORTED_TARGET libnats>=3.4)
# Webhook delivery's HTTP client (libcurl4-openssl-dev: TLS through the same OpenSSL). 7.85 for
# CURLOPT_PROTOCOLS_STR; the multi interface's curl_multi_poll/wakeup are older.
find_package(CURL 7.85 REQUIRED)
if(PAYCORE_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(PAYCORE_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()

# Probe what liburing 2.3 declares, so that code can fall back at build time as well as at
# run time (the kernel may still refuse at run time: DESIGN.md rule 8).
include(CheckSymbolExists)
set(CMAKE_REQUIRED_INCLUDES ${URING_INCLUDE_DIRS})
check_symbol_exists(io_uring_prep_multishot_accept "liburing.h" PAYCORE_HAVE_MULTISHOT_ACCEPT)
check_symbol_exists(io_uring_prep_recv_multishot "liburing.h" PAYCORE_HAVE_RECV_MULTISHOT)
unset(CMAKE_REQUIRED_INCLUDES)
