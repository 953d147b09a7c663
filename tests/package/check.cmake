# ctest -P script: installs the build tree into a scratch prefix; builds the README's first C++
# program against it in a project of its own (tests/package), with g++ and with clang++-14, and
# examples/ in Release; runs each against a real redis-server (unix socket, started here), and
# the README's program with Redis down too.
# Arguments: BUILD_DIR, SOURCE_DIR, WORK_DIR, SANITIZED (the build is instrumented).
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/src")

set(redis_pid "")
macro(fail message)
  if(redis_pid)
    execute_process(COMMAND kill ${redis_pid})
  endif()
  message(FATAL_ERROR "${message}")
endmacro()

execute_process(COMMAND ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix"
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  fail("install failed")
endif()

# The README's first ```cpp block is the consumer.
file(READ "${SOURCE_DIR}/README.md" readme)
string(FIND "${readme}" "```cpp\n" start)
if(start EQUAL -1)
  fail("README.md has no ```cpp block")
endif()
math(EXPR start "${start} + 7")
string(SUBSTRING "${readme}" ${start} -1 rest)
string(FIND "${rest}" "```" end)
string(SUBSTRING "${rest}" 0 ${end} program)
file(WRITE "${WORK_DIR}/src/main.cpp" "${program}")
configure_file("${SOURCE_DIR}/tests/package/CMakeLists.txt" "${WORK_DIR}/src/CMakeLists.txt"
               COPYONLY)

configure_file("${SOURCE_DIR}/tests/package/natural_calls.cpp" "${WORK_DIR}/src/natural_calls.cpp"
               COPYONLY)

# Configures and builds the project in `source` with `cxx`, in Release, against the package.
function(build_against_package source dir cxx what)
  execute_process(COMMAND ${CMAKE_COMMAND} -S "${source}" -B "${dir}" -G Ninja
                          -DCMAKE_CXX_COMPILER=${cxx} -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
                          -DCMAKE_BUILD_TYPE=Release ${ARGN}
                  RESULT_VARIABLE rc)
  if(rc)
    fail("find_package(promptcache) failed for ${what} with ${cxx}")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build "${dir}" RESULT_VARIABLE rc)
  if(rc)
    fail("building ${what} against the installed package failed with ${cxx}")
  endif()
endfunction()

set(binaries "")
build_against_package("${WORK_DIR}/src" "${WORK_DIR}/build-g++" g++ "the README's program")
list(APPEND binaries "${WORK_DIR}/build-g++/consumer")
# clang++ builds the same, and the natural coroutine calls g++ 12 refuses, under ASan and UBSan
# (its own runtimes: not beside a sanitized build's library, which needs g++'s).
# UBSan's `function` check makes clang 14 emit what its assembler cannot ("difference across
# sections") in coroutines; `vptr` would check types of a library it did not instrument.
set(clang_sanitizers "-fsanitize=address,undefined -fno-sanitize=function,vptr")
string(APPEND clang_sanitizers " -fno-sanitize-recover=all -fno-omit-frame-pointer")
set(natural "")
find_program(clang NAMES clang++-14 clang++)
if(clang AND NOT SANITIZED)
  set(dir "${WORK_DIR}/build-clang")
  build_against_package("${WORK_DIR}/src" "${dir}" "${clang}" "the README's program"
                        "-DCMAKE_CXX_FLAGS=${clang_sanitizers}")
  list(APPEND binaries "${dir}/consumer")
  set(natural "${dir}/natural_calls")
endif()

# The numbered examples, as their own project against the package, in Release (g++, the
# compiler whose coroutine bugs they steer around); the sanitized run has them in the e2e tests.
set(examples "")
if(NOT SANITIZED)
  set(dir "${WORK_DIR}/build-examples")
  build_against_package("${SOURCE_DIR}/examples" "${dir}" g++ "examples/")
  foreach(name 1_blocking 2_coroutines 3_near_tier_and_get_or_load)
    list(APPEND examples "${dir}/${name}")
  endforeach()
endif()

# A real Redis on a unix socket in the work dir: no port to collide with.
set(socket "${WORK_DIR}/redis.sock")
execute_process(COMMAND redis-server --port 0 --unixsocket "${socket}" --daemonize yes
                        --pidfile "${WORK_DIR}/redis.pid" --dir "${WORK_DIR}" --save ""
                        --appendonly no
                RESULT_VARIABLE rc)
if(rc)
  fail("redis-server did not start")
endif()
foreach(i RANGE 100)
  if(EXISTS "${WORK_DIR}/redis.pid" AND EXISTS "${socket}")
    break()
  endif()
  execute_process(COMMAND sleep 0.05)
endforeach()
file(READ "${WORK_DIR}/redis.pid" redis_pid)
string(STRIP "${redis_pid}" redis_pid)

# Runs `bin` with REDIS_URL=`url`; fails the test unless it exits `rc` and its stdout or
# stderr (`stream`: out or err) matches `pattern`. Its stdout is left in run_out.
function(expect_run bin url rc stream pattern what)
  set(ENV{REDIS_URL} "${url}")
  execute_process(COMMAND "${bin}" RESULT_VARIABLE got OUTPUT_VARIABLE out ERROR_VARIABLE err
                  TIMEOUT 60)
  if(NOT got EQUAL rc OR NOT ${stream} MATCHES "${pattern}")
    fail("${bin} ${what}: exit ${got} (${rc} expected)\nstdout: ${out}\nstderr: ${err}")
  endif()
  set(run_out "${out}" PARENT_SCOPE)
endfunction()

set(up "unix://${socket}")
foreach(bin IN LISTS binaries)
  expect_run("${bin}" "${up}" 0 out "\\{\"text\":\"hello\"\\}\n\\{\"score\":0.8\\}" "with Redis")
  # Redis down: the program must end, reporting the failed write.
  expect_run("${bin}" "unix://${WORK_DIR}/nobody-listens.sock" 1 err "cache unavailable"
             "with Redis down")
  message(STATUS "${bin}: ok with Redis and with Redis down")
endforeach()
# Each Release-built example against the same Redis (the cluster one is run by the e2e tests).
foreach(bin IN LISTS examples)
  expect_run("${bin}" "${up}" 0 out "" "with Redis")
  message(STATUS "${bin}: ok with Redis")
endforeach()
if(natural)
  expect_run("${natural}" "${up}" 0 out "set: \\{\"v\":1\\}" "(ASan, UBSan)")
  if(NOT run_out MATCHES "loads: 2\n")
    fail("${natural} (ASan, UBSan): two loads expected\nstdout: ${run_out}")
  endif()
  message(STATUS "${natural}: the natural calls ran clean under ASan and UBSan")
endif()
execute_process(COMMAND kill ${redis_pid})
