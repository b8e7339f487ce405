# Strict warnings for paycore's own targets only: link `paycore::warnings` privately.
add_library(paycore_warnings INTERFACE)
add_library(paycore::warnings ALIAS paycore_warnings)
target_compile_options(paycore_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wnon-virtual-dtor -Wcast-align
  -Wnull-dereference -Wimplicit-fallthrough -Wmissing-declarations
  $<$<BOOL:${PAYCORE_WERROR}>:-Werror>)
if(PAYCORE_INVARIANTS)
  target_compile_definitions(paycore_warnings INTERFACE PAYCORE_INVARIANTS=1)
endif()
