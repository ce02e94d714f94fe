# Every C++ example in README.md is compiled (and, where README shows its output, run) by the
# ctest `readme_examples`, so the examples cannot drift away from the library.
#
# Each ```cpp block must follow a marker line that says what it is:
#   <!-- readme-example: program -->         a whole program: compiled and linked
#   <!-- readme-example: program-output -->  a whole program, run: its stdout must equal the next
#                                            fenced block (the `$ ...` command lines left out)
#   <!-- readme-example: program-sigint -->  a whole program that runs until SIGINT: run, sent
#                                            SIGINT after 5 s, it must exit with status 0 within
#                                            30 s; every line of the next fenced block (the
#                                            `$ ...` lines left out) must be a line of its
#                                            stdout, any run of digits matching any other
#   <!-- readme-example: fragment -->        statements, compiled as the body of a coroutine
#                                            `asio::awaitable<void> f(punctual::scheduler& sched)`
#                                            in a file that includes <chrono>, <cstdint>,
#                                            <iostream>, <optional>, <string>, <vector> and
#                                            punctual/punctual.hpp, under
#                                            `using namespace std::chrono_literals;`
# A block without a marker (or with an unknown one) fails the test. Each example is one
# translation unit (`punctual-readme-example-<n>`); `#line` points compiler messages at README.md.
# README.md is a configure dependency: editing it re-runs CMake, which regenerates the sources.
#
# Included from tests/CMakeLists.txt; the test itself is tests/readme/check.cmake.

set(_readme "${PROJECT_SOURCE_DIR}/README.md")
set(_readme_dir "${CMAKE_CURRENT_BINARY_DIR}/readme_examples")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_readme}")
file(READ "${_readme}" _readme_text)

# Sets `out` to the number of newlines in `text`.
function(_punctual_readme_count_newlines text out)
  string(REGEX MATCHALL "\n" _newlines "${text}")
  list(LENGTH _newlines _n)
  set(${out} ${_n} PARENT_SCOPE)
endfunction()

# Writes `content` to `file` only when it differs, so an unchanged example is not rebuilt.
function(_punctual_readme_write file content)
  file(WRITE "${file}.new" "${content}")
  configure_file("${file}.new" "${file}" COPYONLY)
  file(REMOVE "${file}.new")
endfunction()

# Pass 1: every fenced block, as _fence_<i>_line (line of its opening fence), _fence_<i>_info
# (the text after the backticks), _fence_<i>_marker (the readme-example marker on the line
# before it, or "") and _fence_<i>_body. A "\n" is put in front so that a fence on line 1 is
# found too; _rest always begins with the newline that ends the line before `_line`.
set(_errors "")
set(_fences 0)
set(_rest "\n${_readme_text}")
set(_line 1)
while(TRUE)
  string(FIND "${_rest}" "\n```" _at)
  if(_at EQUAL -1)
    break()
  endif()
  string(SUBSTRING "${_rest}" 0 ${_at} _before)
  _punctual_readme_count_newlines("${_before}" _n)
  math(EXPR _fence_line "${_line} + ${_n}")
  set(_marker "")
  if(_before MATCHES "<!-- readme-example: ([^ \n]*) -->[ \t]*$")
    set(_marker "${CMAKE_MATCH_1}")
  endif()
  # The info string, then the body up to the closing fence.
  math(EXPR _at "${_at} + 4")
  string(SUBSTRING "${_rest}" ${_at} -1 _rest)
  string(FIND "${_rest}" "\n" _eol)
  string(FIND "${_rest}" "\n```" _close)
  if(_eol EQUAL -1 OR _close EQUAL -1)
    string(APPEND _errors "README.md:${_fence_line}: this code block is never closed\n")
    break()
  endif()
  string(SUBSTRING "${_rest}" 0 ${_eol} _info)
  string(SUBSTRING "${_rest}" ${_eol} -1 _rest)
  string(FIND "${_rest}" "\n```" _close)
  set(_body "")
  if(_close GREATER 0)
    math(EXPR _len "${_close} - 1")
    string(SUBSTRING "${_rest}" 1 ${_len} _body)
  endif()
  # Skip the closing fence's line; _rest starts again with a newline.
  math(EXPR _close "${_close} + 4")
  string(SUBSTRING "${_rest}" ${_close} -1 _rest)
  string(FIND "${_rest}" "\n" _eol)
  if(_eol EQUAL -1)
    set(_rest "")
  else()
    string(SUBSTRING "${_rest}" ${_eol} -1 _rest)
  endif()
  _punctual_readme_count_newlines("${_body}" _n)
  if(_body STREQUAL "")
    math(EXPR _line "${_fence_line} + 2")
  else()
    math(EXPR _line "${_fence_line} + ${_n} + 3")
  endif()

  math(EXPR _fences "${_fences} + 1")
  set(_fence_${_fences}_line ${_fence_line})
  string(STRIP "${_info}" _fence_${_fences}_info)
  set(_fence_${_fences}_marker "${_marker}")
  set(_fence_${_fences}_body "${_body}")
endwhile()

# Pass 2: a source file and a target for every C++ block; what the test must do with it goes
# into a manifest (read by check.cmake, after the build).
set(_targets "")
set(_manifest "")
set(_examples 0)
foreach(_i RANGE ${_fences})  # blocks are numbered from 1: there is no _fence_0, skipped below
  if(NOT _fence_${_i}_info MATCHES "^(cpp|c\\+\\+)( |$)")
    continue()
  endif()
  set(_where "README.md:${_fence_${_i}_line}")
  set(_kind "${_fence_${_i}_marker}")
  math(EXPR _body_line "${_fence_${_i}_line} + 1")
  set(_body "${_fence_${_i}_body}")
  if(_kind STREQUAL "")
    string(APPEND _errors "${_where}: a C++ block without a `<!-- readme-example: KIND -->` line before "
                          "it (KIND: program, program-output, program-sigint or fragment; see "
                          "tests/readme/examples.cmake)\n")
    continue()
  elseif(NOT _kind MATCHES "^(program|program-output|program-sigint|fragment)$")
    string(APPEND _errors "${_where}: unknown readme-example kind '${_kind}' (known: program, "
                          "program-output, program-sigint, fragment)\n")
    continue()
  endif()

  math(EXPR _examples "${_examples} + 1")
  set(_target "punctual-readme-example-${_examples}")
  set(_src "${_readme_dir}/example_${_examples}.cpp")
  set(_header "// Generated from the C++ block at ${_where} by tests/readme/examples.cmake; edit README.md.\n")
  if(_kind STREQUAL "fragment")
    string(CONCAT _source "${_header}"
      "#include <chrono>\n#include <cstdint>\n#include <iostream>\n#include <optional>\n"
      "#include <string>\n#include <vector>\n\n#include \"punctual/punctual.hpp\"\n\n"
      "using namespace std::chrono_literals;\n\n"
      "asio::awaitable<void> readme_fragment([[maybe_unused]] punctual::scheduler& sched) {\n"
      "#line ${_body_line} \"${_readme}\"\n${_body}\n  co_return;\n}\n\n"
      "int main() { return 0; }\n")
  else()
    set(_source "${_header}#line ${_body_line} \"${_readme}\"\n${_body}\n")
  endif()
  _punctual_readme_write("${_src}" "${_source}")
  add_executable(${_target} EXCLUDE_FROM_ALL "${_src}")
  target_link_libraries(${_target} PRIVATE punctual::punctual punctual_project_options)
  # An example that includes an optional store links its backend (and is compiled only where
  # that backend was found).
  set(_backend_missing "")
  foreach(_backend sqlite postgres)
    if(_body MATCHES "punctual/store/${_backend}_store.hpp")
      if(TARGET punctual::${_backend})
        target_link_libraries(${_target} PRIVATE punctual::${_backend})
      else()
        set(_backend_missing "${_backend}")
      endif()
    endif()
  endforeach()
  if(_backend_missing)
    message(STATUS "punctual: ${_where}: README example skipped (punctual::${_backend_missing} not found)")
    continue()
  endif()
  list(APPEND _targets ${_target})

  if(_kind MATCHES "^program-")
    # The shown output: the next fenced block, which must begin with a `$ ` command line.
    math(EXPR _next "${_i} + 1")
    if(_next GREATER _fences OR NOT _fence_${_next}_body MATCHES "^\\$ ")
      string(APPEND _errors "${_where}: a ${_kind} example must be followed by a block that shows "
                            "its output, starting with a `$ command` line\n")
      continue()
    endif()
    string(REGEX REPLACE "\n\\$ [^\n]*" "" _expected "\n${_fence_${_next}_body}")
    string(REGEX REPLACE "^\n" "" _expected "${_expected}")
    set(_expected_file "${_readme_dir}/example_${_examples}.expected")
    _punctual_readme_write("${_expected_file}" "${_expected}\n")
    string(APPEND _manifest
      "list(APPEND README_RUNS ${_examples})\n"
      "set(README_RUN_${_examples}_KIND ${_kind})\n"
      "set(README_RUN_${_examples}_WHERE [==[${_where}]==])\n"
      "set(README_RUN_${_examples}_EXE [==[$<TARGET_FILE:${_target}>]==])\n"
      "set(README_RUN_${_examples}_EXPECTED [==[${_expected_file}]==])\n")
  endif()
endforeach()

if(_errors)
  message(WARNING "punctual: README.md examples (ctest readme_examples fails until fixed):\n${_errors}")
endif()
add_custom_target(punctual-readme-examples)
if(_targets)
  add_dependencies(punctual-readme-examples ${_targets})
endif()
file(GENERATE OUTPUT "${_readme_dir}/manifest-$<CONFIG>.cmake"
     CONTENT "set(README_ERRORS [==[${_errors}]==])\nset(README_RUNS \"\")\n${_manifest}")

add_test(NAME readme_examples
  COMMAND "${CMAKE_COMMAND}" "-DBUILD_DIR=${PROJECT_BINARY_DIR}" -DCONFIG=$<CONFIG>
          "-DMANIFEST=${_readme_dir}/manifest-$<CONFIG>.cmake"
          -P "${CMAKE_CURRENT_LIST_DIR}/check.cmake")
set_tests_properties(readme_examples PROPERTIES TIMEOUT 900 RESOURCE_LOCK punctual_build_tree
                     ENVIRONMENT "${_punctual_test_env}")
