// Limits of the emulated device. They follow sm_80 (A100), the smaller of the two architectures the
// project ships for, so a launch the emulator accepts also fits the real targets. Per-kernel limits
// (launch bounds, static shared memory, registers) come from nvcc's output: emu_resources.h.
#pragma once

#include <cstddef>

namespace relat_emu {
constexpr unsigned kWarpSize = 32;
constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxBlockDimXY = 1024;
constexpr unsigned kMaxBlockDimZ = 64;
constexpr unsigned kMaxGridDimX = 0x7fffffffu;
constexpr unsigned kMaxGridDimYZ = 65535;
constexpr std::size_t kDefaultMaxShared = 48 * 1024;  // static + dynamic, without the opt-in
constexpr std::size_t kMaxSharedOptin = 166912;       // static + dynamic, opted in: sm_80, 163 KiB
constexpr std::size_t kMaxSharedOptinSm90 = 232448;   // sm_90: 227 KiB (set_device_arch(90))
constexpr std::size_t kMaxKernelParamBytes = 32764;   // CUDA 12.1+ on Volta and newer
constexpr int kEmulatedSmCount = 108;
}  // namespace relat_emu
