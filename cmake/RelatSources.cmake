# The kernel source lists, defined once for every build that compiles them: librelat_cpu (native/),
# librelat_cuda (kernels/, needs nvcc) and the CUDA-on-CPU tests (tests/native/, host compiler
# only). Adding a kernel = one line in each list (plus its tests: see tests/native/CMakeLists.txt).
get_filename_component(RELAT_SOURCE_ROOT ${CMAKE_CURRENT_LIST_DIR}/.. ABSOLUTE)

# Headers both twins of a kernel include (argument checks, shared arithmetic): on the private
# include path of every target that compiles native/src or kernels/ sources.
set(RELAT_COMMON_INCLUDE_DIR ${RELAT_SOURCE_ROOT}/native/common)

# CPU twins.
set(RELAT_CPU_SOURCES
  ${RELAT_SOURCE_ROOT}/native/src/errors.cpp
  ${RELAT_SOURCE_ROOT}/native/src/cpu_gemm.cpp
  ${RELAT_SOURCE_ROOT}/native/src/rmsnorm.cpp
  ${RELAT_SOURCE_ROOT}/native/src/attention.cpp
  ${RELAT_SOURCE_ROOT}/native/src/decode_attention.cpp
  ${RELAT_SOURCE_ROOT}/native/src/linear_cross_entropy.cpp
  ${RELAT_SOURCE_ROOT}/native/src/latent_step.cpp
  ${RELAT_SOURCE_ROOT}/native/src/swiglu.cpp
  ${RELAT_SOURCE_ROOT}/native/src/gemv.cpp
  ${RELAT_SOURCE_ROOT}/native/src/lora_segmented.cpp
  ${RELAT_SOURCE_ROOT}/native/src/embedding.cpp
  ${RELAT_SOURCE_ROOT}/native/src/rope.cpp
  ${RELAT_SOURCE_ROOT}/native/src/adamw.cpp
  ${RELAT_SOURCE_ROOT}/native/src/sample.cpp
  ${RELAT_SOURCE_ROOT}/native/src/profile.cpp
)

# CUDA kernels.
set(RELAT_CUDA_SOURCES
  ${RELAT_SOURCE_ROOT}/kernels/errors.cu
  ${RELAT_SOURCE_ROOT}/kernels/rmsnorm.cu
  ${RELAT_SOURCE_ROOT}/kernels/attention.cu
  ${RELAT_SOURCE_ROOT}/kernels/decode_attention.cu
  ${RELAT_SOURCE_ROOT}/kernels/linear_cross_entropy.cu
  ${RELAT_SOURCE_ROOT}/kernels/latent_step.cu
  ${RELAT_SOURCE_ROOT}/kernels/swiglu.cu
  ${RELAT_SOURCE_ROOT}/kernels/gemv.cu
  ${RELAT_SOURCE_ROOT}/kernels/lora_segmented.cu
  ${RELAT_SOURCE_ROOT}/kernels/embedding.cu
  ${RELAT_SOURCE_ROOT}/kernels/rope.cu
  ${RELAT_SOURCE_ROOT}/kernels/adamw.cu
  ${RELAT_SOURCE_ROOT}/kernels/sample.cu
)

# Host-only code of librelat_cuda that the CUDA-on-CPU emulation cannot compile (NVTX3 and the CUDA
# profiler API: the profiling markers of relat.h). Built into librelat_cuda only.
set(RELAT_CUDA_HOST_SOURCES
  ${RELAT_SOURCE_ROOT}/kernels/profile.cu
)

# CPU twins written with vector extensions (native/src/cpu_simd.h), whose `c += a * b` should be one
# FMA: librelat_cpu compiles them with -ffp-contract=fast (native/CMakeLists.txt). Elsewhere (the
# sanitized test builds) they compile as multiply-then-add, equally correct.
set(RELAT_CPU_FMA_SOURCES
  ${RELAT_SOURCE_ROOT}/native/src/gemv.cpp
  ${RELAT_SOURCE_ROOT}/native/src/lora_segmented.cpp
  ${RELAT_SOURCE_ROOT}/native/src/linear_cross_entropy.cpp
  ${RELAT_SOURCE_ROOT}/native/src/latent_step.cpp
)
