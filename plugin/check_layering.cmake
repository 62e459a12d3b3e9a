# The test unit.Layering: cmake -DPLUGIN_DIR=plugin -DLAYERS=BUILD/plugin/layers.cmake -P this.
# Every #include "..." of a plugin source or header must name a header of its own folder or of a
# folder it uses in plugin/CMakeLists.txt (LAYERS lists them), so the graph CMake checks for
# cycles is the graph of the code; and an installed header may include installed headers only.
cmake_minimum_required(VERSION 3.25)
include(${LAYERS})  # brokertls_folders, brokertls_uses_<folder>
file(GLOB_RECURSE files RELATIVE ${PLUGIN_DIR} ${PLUGIN_DIR}/src/*.cpp ${PLUGIN_DIR}/src/*.hpp
  ${PLUGIN_DIR}/include/*.hpp)
set(problems 0)
foreach(file IN LISTS files)
  if(file MATCHES "^(src|include/brokertls)/([^/]+)/")
    set(folder ${CMAKE_MATCH_2})
  else()
    set(folder base)  # error and identity, at the root
  endif()
  get_filename_component(dir ${PLUGIN_DIR}/${file} DIRECTORY)
  file(STRINGS ${PLUGIN_DIR}/${file} lines REGEX "^#include \"")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^#include \"([^\"]+)\".*" "\\1" header "${line}")
    if(file MATCHES "^include/" AND NOT header MATCHES "^brokertls/")
      message("${file}: installed, but includes the internal header ${header}")
      math(EXPR problems "${problems} + 1")
    endif()
    if(header MATCHES "^brokertls/[^/]+$")
      set(used base)
    elseif(header MATCHES "^(brokertls/)?([^/]+)/")
      set(used ${CMAKE_MATCH_2})
    elseif(EXISTS ${dir}/${header})
      set(used ${folder})  # beside the includer
    elseif(EXISTS ${PLUGIN_DIR}/src/${header})
      set(used base)  # at the root of src/
    else()
      message("${file}: includes ${header}, which is in no folder of the plugin")
      math(EXPR problems "${problems} + 1")
      continue()
    endif()
    if(NOT used IN_LIST brokertls_folders)
      message("${file}: includes ${header}, which is in no folder of the plugin")
      math(EXPR problems "${problems} + 1")
    elseif(NOT used STREQUAL folder AND NOT used IN_LIST brokertls_uses_${folder})
      message("${file}: includes ${header}, but ${folder} does not use ${used} "
        "(brokertls_folder(${folder} USES ...) in plugin/CMakeLists.txt)")
      math(EXPR problems "${problems} + 1")
    endif()
  endforeach()
endforeach()
if(problems)
  message(FATAL_ERROR "${problems} include(s) outside the declared folder graph")
endif()
list(LENGTH files count)
message("${count} files include only what their folder uses")
