# find_package(moetune): the targets moetune::moetune (shared) and
# moetune::moetune_static, with their dependencies found the same way the
# build found them.
include(CMakeFindDependencyMacro)
find_dependency(Threads)
find_dependency(PkgConfig)
if(NOT TARGET PkgConfig::CJSON)
  pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
endif()
include(${CMAKE_CURRENT_LIST_DIR}/moetuneTargets.cmake)
