// Unit tests for core/recycler.hpp: blocks are reused per thread, bounded, and only for
// the class's own size.
#include "core/recycler.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

namespace gh {
namespace {

struct Tracked {
  char payload[1500];
  GH_RECYCLED(Tracked, 4)
};
using TrackedRecycler = Recycler<sizeof(Tracked), 4>;

TEST(Recycler, ReusesTheLastFreedBlock) {
#if GH_RECYCLER_ENABLED
  auto first = std::make_unique<Tracked>();
  void* block = first.get();
  first.reset();
  EXPECT_GE(TrackedRecycler::kept(), 1u);
  auto second = std::make_unique<Tracked>();
  EXPECT_EQ(second.get(), block);
#else
  GTEST_SKIP() << "recycling is off under AddressSanitizer";
#endif
}

TEST(Recycler, KeepsAtMostItsBound) {
  std::vector<std::unique_ptr<Tracked>> many;
  for (int i = 0; i < 10; ++i) many.push_back(std::make_unique<Tracked>());
  many.clear();
  EXPECT_LE(TrackedRecycler::kept(), 4u);
}

TEST(Recycler, EachThreadHasItsOwnList) {
  auto here = std::make_unique<Tracked>();
  here.reset();
  const std::size_t kept_here = TrackedRecycler::kept();
  std::size_t kept_there = 99;
  std::thread([&] { kept_there = TrackedRecycler::kept(); }).join();
  EXPECT_EQ(kept_there, 0u);
  EXPECT_EQ(TrackedRecycler::kept(), kept_here);
}

TEST(Recycler, OtherSizesGoToMalloc) {
  const std::size_t before = TrackedRecycler::kept();
  void* odd = TrackedRecycler::allocate(sizeof(Tracked) + 8);
  TrackedRecycler::release(odd, sizeof(Tracked) + 8);
  EXPECT_EQ(TrackedRecycler::kept(), before);
}

}  // namespace
}  // namespace gh
