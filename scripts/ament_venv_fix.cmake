# Injected with -DCMAKE_PROJECT_INCLUDE by scripts/setup.sh when it builds interface packages against the ROS 2
# PyPI wheels. Their exported CMake targets (<pkg>__rosidl_generator_py) carry the wheel builder's include paths
# (/opt/python/cp311-cp311/include/python3.11 and .../site-packages/numpy/_core/include), which CMake rejects as
# non-existent. Once the top-level CMakeLists has imported every target, rewrite them to this venv's Python and
# numpy headers. Nothing outside the build tree is changed.
if(NOT EDGE_VISION_PYTHON_INCLUDE OR NOT EDGE_VISION_SITE_PACKAGES)
  message(FATAL_ERROR "ament_venv_fix.cmake needs -DEDGE_VISION_PYTHON_INCLUDE=<dir of Python.h> "
                      "and -DEDGE_VISION_SITE_PACKAGES=<the venv's site-packages>")
endif()

function(_edge_vision_fix_imported_includes)
  get_property(_targets DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  set(_count 0)
  foreach(_target IN LISTS _targets)
    get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(_dirs AND _dirs MATCHES "/opt/python/")
      string(REGEX REPLACE "/opt/python/[^/;]+/include/python[0-9.]+" "${EDGE_VISION_PYTHON_INCLUDE}" _dirs "${_dirs}")
      string(REGEX REPLACE "/opt/python/[^/;]+/lib/python[0-9.]+/site-packages" "${EDGE_VISION_SITE_PACKAGES}"
             _dirs "${_dirs}")
      set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_dirs}")
      math(EXPR _count "${_count} + 1")
    endif()
  endforeach()
  message(STATUS "ament_venv_fix: rewrote the include directories of ${_count} imported target(s)")
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _edge_vision_fix_imported_includes)
