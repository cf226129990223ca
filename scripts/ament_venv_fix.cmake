# Injected with -DCMAKE_PROJECT_INCLUDE when building interface packages against ROS 2 PyPI wheels: their
# exported CMake targets carry the wheel builder's include paths (/opt/python/cp311-cp311/...). Rewrite them
# to this venv's Python and numpy headers once the top-level CMakeLists has imported every target.
function(_edge_vision_fix_imported_includes)
  get_property(_targets DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  foreach(_target IN LISTS _targets)
    get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(_dirs AND _dirs MATCHES "/opt/python/")
      string(REGEX REPLACE "/opt/python/[^/;]+/include/python[0-9.]+" "${EDGE_VISION_PYTHON_INCLUDE}" _dirs "${_dirs}")
      string(REGEX REPLACE "/opt/python/[^/;]+/lib/python[0-9.]+/site-packages" "${EDGE_VISION_SITE_PACKAGES}" _dirs "${_dirs}")
      set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_dirs}")
    endif()
  endforeach()
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _edge_vision_fix_imported_includes)
