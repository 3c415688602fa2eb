// CUDA's built-in vector types (float4, int2, uint3, dim3, ...) with CUDA's sizes and alignments,
// so reinterpret_cast vector loads behave (and misalign) as on the device.
#pragma once

#define RELAT_EMU_VEC1(name, T, A) \
  struct alignas(A) name {         \
    T x;                           \
  };                               \
  inline name make_##name(T x) { return name{x}; }
#define RELAT_EMU_VEC2(name, T, A) \
  struct alignas(A) name {         \
    T x, y;                        \
  };                               \
  inline name make_##name(T x, T y) { return name{x, y}; }
#define RELAT_EMU_VEC3(name, T, A) \
  struct alignas(A) name {         \
    T x, y, z;                     \
  };                               \
  inline name make_##name(T x, T y, T z) { return name{x, y, z}; }
#define RELAT_EMU_VEC4(name, T, A) \
  struct alignas(A) name {         \
    T x, y, z, w;                  \
  };                               \
  inline name make_##name(T x, T y, T z, T w) { return name{x, y, z, w}; }

RELAT_EMU_VEC1(char1, signed char, 1)
RELAT_EMU_VEC2(char2, signed char, 2)
RELAT_EMU_VEC3(char3, signed char, 1)
RELAT_EMU_VEC4(char4, signed char, 4)
RELAT_EMU_VEC1(uchar1, unsigned char, 1)
RELAT_EMU_VEC2(uchar2, unsigned char, 2)
RELAT_EMU_VEC3(uchar3, unsigned char, 1)
RELAT_EMU_VEC4(uchar4, unsigned char, 4)
RELAT_EMU_VEC1(short1, short, 2)
RELAT_EMU_VEC2(short2, short, 4)
RELAT_EMU_VEC3(short3, short, 2)
RELAT_EMU_VEC4(short4, short, 8)
RELAT_EMU_VEC1(ushort1, unsigned short, 2)
RELAT_EMU_VEC2(ushort2, unsigned short, 4)
RELAT_EMU_VEC3(ushort3, unsigned short, 2)
RELAT_EMU_VEC4(ushort4, unsigned short, 8)
RELAT_EMU_VEC1(int1, int, 4)
RELAT_EMU_VEC2(int2, int, 8)
RELAT_EMU_VEC3(int3, int, 4)
RELAT_EMU_VEC4(int4, int, 16)
RELAT_EMU_VEC1(uint1, unsigned int, 4)
RELAT_EMU_VEC2(uint2, unsigned int, 8)
RELAT_EMU_VEC3(uint3, unsigned int, 4)
RELAT_EMU_VEC4(uint4, unsigned int, 16)
RELAT_EMU_VEC1(float1, float, 4)
RELAT_EMU_VEC2(float2, float, 8)
RELAT_EMU_VEC3(float3, float, 4)
RELAT_EMU_VEC4(float4, float, 16)
RELAT_EMU_VEC1(longlong1, long long, 8)
RELAT_EMU_VEC2(longlong2, long long, 16)
RELAT_EMU_VEC1(ulonglong1, unsigned long long, 8)
RELAT_EMU_VEC2(ulonglong2, unsigned long long, 16)
RELAT_EMU_VEC1(double1, double, 8)
RELAT_EMU_VEC2(double2, double, 16)

#undef RELAT_EMU_VEC1
#undef RELAT_EMU_VEC2
#undef RELAT_EMU_VEC3
#undef RELAT_EMU_VEC4

// Grid and block sizes. Like CUDA's, every component defaults to 1 and converts from uint3.
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};
