# Decides whether the CUDA kernel library is built.
#   RELAT_CUDA=AUTO (default): build it when a CUDA compiler is found.
#   RELAT_CUDA=ON: require it.   RELAT_CUDA=OFF: never build it.
# RELAT_CUDA_ARCHITECTURES: SM targets (default 80;90; "native" on a GPU machine).
# RELAT_PTXAS_VERBOSE=ON prints registers, shared memory and spills per kernel (-Xptxas -v).
set(RELAT_CUDA AUTO CACHE STRING "Build the CUDA kernel library: AUTO, ON or OFF")
set_property(CACHE RELAT_CUDA PROPERTY STRINGS AUTO ON OFF)
set(RELAT_CUDA_ARCHITECTURES "80;90" CACHE STRING "CUDA SM architectures to compile for")
option(RELAT_PTXAS_VERBOSE "Print ptxas resource usage for every kernel" OFF)

set(RELAT_WITH_CUDA OFF)
if(NOT RELAT_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_ARCHITECTURES ${RELAT_CUDA_ARCHITECTURES})
    enable_language(CUDA)
    set(RELAT_WITH_CUDA ON)
  elseif(RELAT_CUDA STREQUAL "ON")
    message(FATAL_ERROR "RELAT_CUDA=ON but no CUDA compiler was found (set CMAKE_CUDA_COMPILER)")
  else()
    message(STATUS "relat: no CUDA compiler found, building the CPU library only")
  endif()
endif()

if(RELAT_WITH_CUDA)
  set(CMAKE_CUDA_VISIBILITY_PRESET hidden)
  # cudart is linked statically: the library then needs only the driver (libcuda.so) at run time.
  set(CMAKE_CUDA_RUNTIME_LIBRARY Static)
  # A register spill or local-memory use is a build error, on every architecture we compile for.
  set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 cannot ask nvcc for C++20
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  set(RELAT_CUDA_FLAGS --expt-relaxed-constexpr -Xptxas=-warn-spills,-warn-lmem-usage,-Werror
      --Werror=all-warnings)
  if(RELAT_PTXAS_VERBOSE)
    list(APPEND RELAT_CUDA_FLAGS -Xptxas=-v)
  endif()
  message(STATUS "relat: CUDA ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}")
endif()
