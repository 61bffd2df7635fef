// Recycler: a bounded per-thread free list of same-size blocks, for objects one loop makes
// and frees at a high rate (HTTP/2 streams, one per request). glibc's thread cache keeps at
// most 7 freed blocks per size and none above 1,032 bytes; past that malloc takes its slow
// bins, and a request of 1 KiB or more first consolidates the fast bins. Profiling the h2
// path showed ~850 instructions per stream for that (bench/PROFILE.md).
//
// A class opts in with GH_RECYCLED(Class, keep): its operator new/delete take blocks from
// the calling thread's list. At most `keep` blocks stay on a list (a burst leaves at most
// keep * sizeof(Class) bytes per thread); the rest, and every block when the thread ends,
// go back to malloc. Under AddressSanitizer recycling is off, so a use after free is
// still caught.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define GH_RECYCLER_ENABLED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GH_RECYCLER_ENABLED 0
#endif
#endif
#ifndef GH_RECYCLER_ENABLED
#define GH_RECYCLER_ENABLED 1
#endif

namespace gh {

template <std::size_t Size, std::size_t Keep>
class Recycler {
 public:
  static void* allocate(std::size_t size) {
    FreeList& list = free_list();
    if (!GH_RECYCLER_ENABLED || size != Size || list.blocks.empty()) return ::operator new(size);
    void* block = list.blocks.back();
    list.blocks.pop_back();
    return block;
  }

  static void release(void* block, std::size_t size) noexcept {
    FreeList& list = free_list();
    if (!GH_RECYCLER_ENABLED || size != Size || list.blocks.size() >= Keep) {
      return ::operator delete(block);
    }
    list.blocks.push_back(block);  // never allocates: capacity was reserved
  }

  // Blocks kept by the calling thread (tests).
  static std::size_t kept() { return free_list().blocks.size(); }

 private:
  struct FreeList {
    FreeList() { blocks.reserve(Keep); }
    ~FreeList() {
      for (void* block : blocks) ::operator delete(block);
    }
    std::vector<void*> blocks;
  };

  static FreeList& free_list() {
    thread_local FreeList list;
    return list;
  }
};

}  // namespace gh

// Inside a class definition: route its heap allocations through a Recycler.
#define GH_RECYCLED(Class, keep)                                        \
  static void* operator new(std::size_t size) {                         \
    return ::gh::Recycler<sizeof(Class), keep>::allocate(size);         \
  }                                                                     \
  static void operator delete(void* block, std::size_t size) noexcept { \
    ::gh::Recycler<sizeof(Class), keep>::release(block, size);          \
  }
