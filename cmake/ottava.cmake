# Helper functions that keep each folder's CMakeLists short (STYLE.md, "CMake").

set(OTTAVA_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Werror)
# GCC 12 reports false -Wrestrict errors inside std::string concatenation at -O2/-O3 (GCC bug
# 105651); the warning stays on for other compilers.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  list(APPEND OTTAVA_WARNINGS -Wno-restrict)
endif()

# ottava_cc_library(NAME name SRCS a.cc b.cc DEPS dep...)
function(ottava_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(${ARG_NAME} STATIC ${ARG_SRCS})
  target_include_directories(${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(${ARG_NAME} PRIVATE ${OTTAVA_WARNINGS})
  target_link_libraries(${ARG_NAME} PUBLIC ${ARG_DEPS})
endfunction()

# ottava_cc_binary(NAME name SRCS main.cc DEPS dep...)
function(ottava_cc_binary)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(${ARG_NAME} PRIVATE ${OTTAVA_WARNINGS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
endfunction()

# ottava_cc_test(NAME name SRCS a_test.cc DEPS dep... LABELS unit|integration|redis|kafka|e2e
#                [TIMEOUT seconds])
function(ottava_cc_test)
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(${ARG_NAME} PRIVATE ${OTTAVA_WARNINGS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  set_tests_properties(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
    ENVIRONMENT "OTTAVA_BIN_DIR=${CMAKE_BINARY_DIR}/bin;OTTAVA_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()

# ottava_header_check(NAME name DIRS dir... DEPS dep...)
# Checks that every .h under DIRS compiles on its own (STYLE.md: "headers compile on their own"):
# one generated .cc per header that includes only that header, compiled as an OBJECT library.
# The library is left out of `all` (a normal build does not pay for it); the ctest test NAME
# (label `lint`) builds it, so `make test` runs it. Sources are rewritten only when they change,
# and ccache answers unchanged headers, so a re-run costs little.
function(ottava_header_check)
  cmake_parse_arguments(ARG "" "NAME" "DIRS;DEPS" ${ARGN})
  set(sources)
  foreach(dir ${ARG_DIRS})
    file(GLOB_RECURSE headers CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}
         ${PROJECT_SOURCE_DIR}/${dir}/*.h)
    foreach(header ${headers})
      string(REPLACE "/" "__" stem ${header})
      set(source ${CMAKE_BINARY_DIR}/${ARG_NAME}/${stem}.cc)
      file(CONFIGURE OUTPUT ${source} CONTENT "#include \"${header}\"\n")
      list(APPEND sources ${source})
    endforeach()
  endforeach()
  add_library(${ARG_NAME} OBJECT EXCLUDE_FROM_ALL ${sources})
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  # Parsing is what is checked: no optimisation.
  target_compile_options(${ARG_NAME} PRIVATE ${OTTAVA_WARNINGS} -O0)
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  add_test(NAME ${ARG_NAME}
           COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target ${ARG_NAME})
  set_tests_properties(${ARG_NAME} PROPERTIES LABELS lint TIMEOUT 1200)
endfunction()
