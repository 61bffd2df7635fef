// ByteBuffer: one fixed-size block with a consumed prefix [0, begin), pending bytes
// [begin, end) and free space [end, capacity). Blocks come from a per-worker BufferPool
// and go back to it when a connection idles, so idle connections hold no buffers; the
// pool in turn gives back the blocks a burst left unused (release_unused), so an idle
// worker holds none either.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <vector>

namespace gh {

class BufferPool {
 public:
  explicit BufferPool(std::size_t block_size, std::size_t max_free = 32)
      : block_size_(block_size), max_free_(max_free) {}

  std::size_t block_size() const { return block_size_; }

  std::unique_ptr<char[]> take() {
    if (free_.empty()) return std::make_unique_for_overwrite<char[]>(block_size_);
    auto block = std::move(free_.back());
    free_.pop_back();
    low_water_ = std::min(low_water_, free_.size());
    return block;
  }

  void give_back(std::unique_ptr<char[]> block) {
    if (block && free_.size() < max_free_) free_.push_back(std::move(block));
  }

  // Called periodically: frees the blocks that stayed in the pool through the whole
  // period (its low-water mark), so the pool follows what the load uses. Returns how many
  // were freed.
  std::size_t release_unused() {
    const std::size_t surplus = low_water_;
    free_.erase(free_.begin(), free_.begin() + static_cast<std::ptrdiff_t>(surplus));  // coldest
    low_water_ = free_.size();
    return surplus;
  }
  std::size_t free_blocks() const { return free_.size(); }

 private:
  std::size_t block_size_;
  std::size_t max_free_;
  std::vector<std::unique_ptr<char[]>> free_;
  std::size_t low_water_ = 0;  // fewest free blocks since the last release_unused()
};

class ByteBuffer {
 public:
  bool allocated() const { return block_ != nullptr; }
  void acquire(BufferPool& pool) {
    if (!block_) {
      block_ = pool.take();
      capacity_ = pool.block_size();
    }
  }
  // Returns the block to the pool if nothing is pending.
  void release_if_empty(BufferPool& pool) {
    if (block_ && pending() == 0) {
      pool.give_back(std::move(block_));
      begin_ = end_ = capacity_ = 0;
    }
  }

  char* begin_ptr() { return block_.get() + begin_; }
  char* end_ptr() { return block_.get() + end_; }
  std::size_t pending() const { return end_ - begin_; }
  std::size_t free_space() const { return capacity_ - end_; }
  std::size_t capacity() const { return capacity_; }

  void produced(std::size_t n) { end_ += n; }
  // Consumed bytes stay where they are (a write in flight may still point at them)
  // until compact().
  void consume(std::size_t n) { begin_ += n; }
  // Moves pending bytes to the front; only when no write references the block.
  void compact() {
    if (begin_ == 0) return;
    std::memmove(block_.get(), block_.get() + begin_, pending());
    end_ -= begin_;
    begin_ = 0;
  }

 private:
  std::unique_ptr<char[]> block_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace gh
