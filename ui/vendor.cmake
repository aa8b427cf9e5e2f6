# vendor.cmake - fetches the UI's one runtime dependency at build time and
# checks it (run by CMake as a script: cmake -DSRC=ui -DDST=dir -DNPM=npm -P).
#
# npm ci installs exactly what ui/package-lock.json records and verifies the
# package tarball against the lock's integrity hash (--ignore-scripts: no
# package code runs). The files the binary embeds are then checked against
# ui/vendor.sha256, so a changed file can never slip into a build unnoticed.
foreach(v SRC DST NPM)
  if(NOT ${v})
    message(FATAL_ERROR "vendor.cmake: ${v} is not set")
  endif()
endforeach()
file(MAKE_DIRECTORY ${DST})
configure_file(${SRC}/package.json ${DST}/package.json COPYONLY)
configure_file(${SRC}/package-lock.json ${DST}/package-lock.json COPYONLY)
execute_process(
  COMMAND ${NPM} ci --ignore-scripts --no-audit --no-fund --loglevel=error
  WORKING_DIRECTORY ${DST}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "npm ci failed in ${DST} (the UI needs the npm registry or a filled npm "
                      "cache at build time; configure with -DRWGATE_UI=OFF to build without it)")
endif()
file(STRINGS ${SRC}/vendor.sha256 lines REGEX "^[0-9a-f]+  ")
foreach(line ${lines})
  string(REGEX REPLACE "^([0-9a-f]+)  (.*)$" "\\1" want "${line}")
  string(REGEX REPLACE "^([0-9a-f]+)  (.*)$" "\\2" file "${line}")
  if(NOT EXISTS ${DST}/${file})
    message(FATAL_ERROR "vendor.cmake: ${file} is missing after npm ci")
  endif()
  file(SHA256 ${DST}/${file} got)
  if(NOT got STREQUAL want)
    message(FATAL_ERROR "vendor.cmake: ${file} has SHA-256 ${got}, ui/vendor.sha256 pins ${want}")
  endif()
endforeach()
file(WRITE ${DST}/vendor.stamp "ok\n")
