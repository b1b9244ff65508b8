# The CUDA backend (-DFLASHLM_CUDA=ON): src/backend/cuda/*.cu compiled by nvcc and
# src/backend/cuda/*.cpp by the host compiler, into the backend layer, with the CUDA
# runtime linked statically. Needs nvcc (on PATH, in /usr/local/cuda, or given as
# CMAKE_CUDA_COMPILER; scripts/install_nvcc.sh installs one); no GPU is needed to build.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 80 90)  # A100, H100/H200
endif()
if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
  find_program(FLASHLM_NVCC nvcc)
  if(NOT FLASHLM_NVCC)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
endif()
enable_language(CUDA)
# Targets made after this point that hold CUDA objects (the libraries, the binary) would
# otherwise ask for the C++ standard (20) as a CUDA dialect, which CMake 3.25 cannot give nvcc.
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
find_package(CUDAToolkit REQUIRED)

file(GLOB BACKEND_CUDA_SRCS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/backend/cuda/*.cu
     ${CMAKE_SOURCE_DIR}/src/backend/cuda/*.cpp)
list(FILTER BACKEND_CUDA_SRCS EXCLUDE REGEX "_test\\.cpp$")
target_sources(flashlm_backend PRIVATE ${BACKEND_CUDA_SRCS})
# The layer exists before CUDA is enabled, so its CUDA properties are set here; the .cu
# files need no C++20.
set_target_properties(flashlm_backend PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}"
  CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
# The project's warning flags are the host compiler's: nvcc gets its own (warnings as
# errors, host warnings passed through).
get_target_property(FLASHLM_BACKEND_OPTS flashlm_backend COMPILE_OPTIONS)
set_property(TARGET flashlm_backend PROPERTY COMPILE_OPTIONS "$<$<COMPILE_LANGUAGE:CXX>:${FLASHLM_BACKEND_OPTS}>")
target_compile_options(flashlm_backend PRIVATE
  "$<$<COMPILE_LANGUAGE:CUDA>:--Werror;all-warnings;-Xcompiler=-Wall,-Wextra,-Werror>")
# Only backend.cpp asks whether the CUDA backend is there, so turning the option on
# rebuilds no other file.
set_source_files_properties(${CMAKE_SOURCE_DIR}/src/backend/backend.cpp PROPERTIES COMPILE_DEFINITIONS
  FLASHLM_HAVE_CUDA=1)
target_link_libraries(flashlm_backend PUBLIC CUDA::cudart_static)
