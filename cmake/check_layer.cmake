# cmake -P script, run by the build before a layer compiles (cmake/PromptcacheLayers.cmake):
# fails the build when one of the layer's files includes a header of a layer it does not depend
# on. Arguments: LAYER, ALLOWED (the layer, its declared dependencies and theirs), LAYERS (every
# layer), FILES (the layer's sources and headers), SANS_IO (files that must do no I/O), each
# |-separated; STAMP.
cmake_minimum_required(VERSION 3.25)  # IN_LIST, in script mode too
# The lists come |-separated (see cmake/PromptcacheLayers.cmake).
string(REPLACE "|" ";" ALLOWED "${ALLOWED}")
string(REPLACE "|" ";" LAYERS "${LAYERS}")
string(REPLACE "|" ";" FILES "${FILES}")
string(REPLACE "|" ";" SANS_IO "${SANS_IO}")
set(bad "")
# A sans-IO file reaches no socket, timer, log or runner: not through a library, nor through the
# layer's own I/O classes.
set(io_headers "^(boost/asio|boost/beast|spdlog|sys/|netinet/|arpa/|unistd\\.h|poll\\.h)|^promptcache/log\\.hpp$|^promptcache/net/(connection|client)\\.hpp$|^net/stream\\.hpp$|^telemetry/otlp_http\\.hpp$")
foreach(file IN LISTS SANS_IO)
  file(STRINGS "${file}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]")
  foreach(line IN LISTS includes)
    string(REGEX MATCH "[<\"]([^>\"]+)[>\"]" quoted "${line}")
    if(CMAKE_MATCH_1 MATCHES "${io_headers}")
      string(APPEND bad "\n  ${file}: #include ${quoted} (I/O in a sans-IO file)")
    endif()
  endforeach()
endforeach()
foreach(file IN LISTS FILES)
  file(STRINGS "${file}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
  foreach(line IN LISTS includes)
    string(REGEX MATCH "\"([^\"]+)\"" quoted "${line}")
    set(header "${CMAKE_MATCH_1}")
    set(target "")
    if(header MATCHES "^promptcache/([a-z_]+)/")  # a public header of a layer
      set(target "${CMAKE_MATCH_1}")
    elseif(header MATCHES "^([a-z_]+)/")  # an internal one (src/<layer>/...)
      set(target "${CMAKE_MATCH_1}")
    endif()
    if(target AND target IN_LIST LAYERS AND NOT target IN_LIST ALLOWED)
      string(APPEND bad "\n  ${file}: #include \"${header}\" (layer ${target})")
    endif()
  endforeach()
endforeach()
if(bad)
  string(REPLACE ";" ", " allowed_text "${ALLOWED}")
  message(FATAL_ERROR
          "layer ${LAYER} may include only ${allowed_text}, and its sans-IO files nothing that does I/O (docs/layers.md):${bad}")
endif()
file(TOUCH "${STAMP}")
