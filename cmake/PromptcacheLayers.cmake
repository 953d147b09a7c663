# The library's layers as CMake targets (docs/layers.md). A layer is an OBJECT library over its
# directories; DEPENDS names the layers below it that it may use. Before a layer compiles, the
# build checks that its sources and headers include nothing of any other layer (the check fails
# the build, naming the file and the include).

set(PROMPTCACHE_LAYERS "")

# promptcache_layer(<name> [DEPENDS <layer>...] [DIRS <dir>...] [HEADERS <file>...]
#                   [SANS_IO <dir>...] SOURCES <file>...)
#   DIRS: more directories of its headers, besides include/promptcache/<name> and src/<name>;
#   HEADERS: single headers of its own (the base layer's, beside the layer directories);
#   SANS_IO: directories of the layer whose files must do no I/O: they may include neither Asio,
#            Beast, spdlog, system socket headers, nor the layer's I/O classes.
function(promptcache_layer name)
  cmake_parse_arguments(L "" "" "DEPENDS;DIRS;HEADERS;SOURCES;SANS_IO" ${ARGN})
  set(target promptcache_layer_${name})
  add_library(${target} OBJECT ${L_SOURCES})
  target_link_libraries(${target} PUBLIC promptcache_build_settings)
  set(allowed ${name})
  foreach(dep IN LISTS L_DEPENDS)
    if(NOT TARGET promptcache_layer_${dep})
      message(FATAL_ERROR "layer ${name} depends on ${dep}, which is not declared before it")
    endif()
    target_link_libraries(${target} PUBLIC promptcache_layer_${dep})
    get_property(below GLOBAL PROPERTY PROMPTCACHE_LAYER_ALLOWED_${dep})
    list(APPEND allowed ${below})
  endforeach()
  list(REMOVE_DUPLICATES allowed)
  set_property(GLOBAL PROPERTY PROMPTCACHE_LAYER_ALLOWED_${name} ${allowed})
  set_property(GLOBAL APPEND PROPERTY PROMPTCACHE_LAYER_NAMES ${name})

  set(files "")
  foreach(source IN LISTS L_SOURCES L_HEADERS)
    list(APPEND files ${CMAKE_CURRENT_SOURCE_DIR}/${source})
  endforeach()
  foreach(dir IN LISTS L_DIRS ITEMS include/promptcache/${name} src/${name})
    file(GLOB_RECURSE headers CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/*.hpp)
    list(APPEND files ${headers})
  endforeach()
  list(REMOVE_DUPLICATES files)
  set(pure "")
  foreach(dir IN LISTS L_SANS_IO)
    file(GLOB_RECURSE found CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/*.hpp
         ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/*.cpp)
    list(APPEND pure ${found})
  endforeach()
  file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/layers)
  set(stamp ${CMAKE_CURRENT_BINARY_DIR}/layers/${name}.checked)
  get_property(all GLOBAL PROPERTY PROMPTCACHE_LAYER_NAMES_ALL)
  # Lists travel as |-separated words (a ';' would split the command line).
  string(REPLACE ";" "|" allowed_arg "${allowed}")
  string(REPLACE ";" "|" all_arg "${all}")
  string(REPLACE ";" "|" files_arg "${files}")
  string(REPLACE ";" "|" pure_arg "${pure}")
  add_custom_command(
    OUTPUT ${stamp}
    COMMAND ${CMAKE_COMMAND} -DLAYER=${name} -DALLOWED=${allowed_arg} -DLAYERS=${all_arg}
            -DFILES=${files_arg} -DSANS_IO=${pure_arg} -DSTAMP=${stamp} -P ${PROJECT_SOURCE_DIR}/cmake/check_layer.cmake
    DEPENDS ${files} ${pure} ${PROJECT_SOURCE_DIR}/cmake/check_layer.cmake
    COMMENT "Checking the includes of layer ${name}"
    VERBATIM)
  add_custom_target(${target}_includes DEPENDS ${stamp})
  add_dependencies(${target} ${target}_includes)
endfunction()
