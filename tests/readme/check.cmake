# The ctest `readme_examples` (see tests/readme/examples.cmake for the conventions):
#   cmake -DBUILD_DIR=... -DCONFIG=... -DMANIFEST=... -P tests/readme/check.cmake
# Builds every README example (a README.md edited since the last configure is re-read by that
# build, which rewrites the manifest), then reports unmarked blocks and runs the examples whose
# output README shows.

execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BUILD_DIR}" --target punctual-readme-examples
                        --config "${CONFIG}"
                RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "readme_examples: an example in README.md does not compile (the compiler's "
                      "messages above point at README.md lines)")
endif()
include("${MANIFEST}")
if(README_ERRORS)
  message(NOTICE "${README_ERRORS}")
  message(FATAL_ERROR "readme_examples: README.md has C++ blocks the test cannot check (above)")
endif()

# Sets `out` to `text` with every run of digits replaced by 0 (times, counts and ids vary).
function(_readme_digits_to_zero text out)
  string(REGEX REPLACE "[0-9]+" "0" _text "${text}")
  set(${out} "${_text}" PARENT_SCOPE)
endfunction()

set(_failed "")
foreach(_n IN LISTS README_RUNS)
  set(_where "${README_RUN_${_n}_WHERE}")
  set(_exe "${README_RUN_${_n}_EXE}")
  file(READ "${README_RUN_${_n}_EXPECTED}" _expected)
  if(README_RUN_${_n}_KIND STREQUAL "program-output")
    execute_process(COMMAND "${_exe}" RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err
                    TIMEOUT 60)
    if(NOT _rc EQUAL 0)
      string(APPEND _failed "${_where}: the program exited with '${_rc}'; stderr:\n${_err}\n")
    elseif(NOT _out STREQUAL _expected)
      string(APPEND _failed "${_where}: the program printed\n${_out}-- but README.md shows\n${_expected}--\n")
    else()
      message(STATUS "${_where}: ran, output as shown")
    endif()
  else()  # program-sigint
    find_program(_timeout timeout)
    if(NOT _timeout)
      message(STATUS "${_where}: compiled; not run (no `timeout` program to send SIGINT)")
      continue()
    endif()
    # SIGINT after 5 s; SIGKILL if the program is still running 30 s later (exit status 137).
    execute_process(COMMAND "${_timeout}" --preserve-status -s INT -k 30 5 "${_exe}"
                    RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
    if(NOT _rc EQUAL 0)
      string(APPEND _failed "${_where}: sent SIGINT after 5 s, the program exited with '${_rc}' (not 0); "
                            "stdout:\n${_out}stderr:\n${_err}\n")
      continue()
    endif()
    _readme_digits_to_zero("\n${_out}" _out0)
    _readme_digits_to_zero("${_expected}" _rest)
    set(_missing "")
    while(NOT _rest STREQUAL "")
      string(FIND "${_rest}" "\n" _eol)
      string(SUBSTRING "${_rest}" 0 ${_eol} _line)
      math(EXPR _eol "${_eol} + 1")
      string(SUBSTRING "${_rest}" ${_eol} -1 _rest)
      string(FIND "${_out0}" "\n${_line}\n" _at)
      if(_at EQUAL -1 AND NOT _line STREQUAL "")
        string(APPEND _missing "  ${_line}\n")
      endif()
    endwhile()
    if(_missing)
      string(APPEND _failed "${_where}: README.md shows lines the program did not print (digits "
                            "replaced by 0):\n${_missing}its stdout:\n${_out}\n")
    else()
      message(STATUS "${_where}: ran until SIGINT, exited 0, printed every line shown")
    endif()
  endif()
endforeach()
if(_failed)
  message(NOTICE "${_failed}")  # as printed: FATAL_ERROR would re-wrap the programs' output
  message(FATAL_ERROR "readme_examples: README.md examples do not do what README.md shows (above)")
endif()
