#include "core/byte_buffer.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace gh {
namespace {

// Fills the pool with `n` free blocks.
void fill(BufferPool& pool, int n) {
  std::vector<std::unique_ptr<char[]>> blocks;
  for (int i = 0; i < n; ++i) blocks.push_back(pool.take());
  for (auto& block : blocks) pool.give_back(std::move(block));
}

TEST(BufferPoolTest, BlocksUnusedForAWholePeriodAreFreed) {
  BufferPool pool(64, 32);
  fill(pool, 8);
  pool.release_unused();  // the first period only sets the low-water mark
  EXPECT_EQ(pool.free_blocks(), 8u);
  std::unique_ptr<char[]> in_use = pool.take();  // 7 sat unused through this period
  pool.give_back(std::move(in_use));
  EXPECT_EQ(pool.release_unused(), 7u);
  EXPECT_EQ(pool.free_blocks(), 1u);
  EXPECT_EQ(pool.release_unused(), 1u);
  EXPECT_EQ(pool.release_unused(), 0u);
}

TEST(BufferPoolTest, BlocksInUseDuringThePeriodAreKept) {
  BufferPool pool(64, 32);
  fill(pool, 4);
  pool.release_unused();
  // The load takes all four and gives them back: none sat unused, none is freed.
  fill(pool, 4);
  EXPECT_EQ(pool.release_unused(), 0u);
  EXPECT_EQ(pool.free_blocks(), 4u);
}

TEST(BufferPoolTest, KeepsAtMostMaxFree) {
  BufferPool pool(64, 2);
  fill(pool, 5);
  EXPECT_EQ(pool.free_blocks(), 2u);
}

TEST(ByteBufferTest, ReleasesItsBlockOnlyWhenEmpty) {
  BufferPool pool(64, 4);
  ByteBuffer buffer;
  buffer.acquire(pool);
  buffer.produced(10);
  buffer.release_if_empty(pool);
  EXPECT_TRUE(buffer.allocated());
  buffer.consume(10);
  buffer.release_if_empty(pool);
  EXPECT_FALSE(buffer.allocated());
  EXPECT_EQ(pool.free_blocks(), 1u);
}

}  // namespace
}  // namespace gh
