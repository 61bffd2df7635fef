// Outbox: the pieces of one write, gathered for a single uv_write (writev). Pieces are
// either views into a connection's input buffer (body bytes, never copied) or bytes the
// proxy made (rebuilt heads, chunk framing) kept in `scratch`. Offsets into scratch are
// resolved only in buffers(), so scratch may grow while pieces are added.
#pragma once

#include <uv.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace gh {

class Outbox {
 public:
  Outbox() = default;

  std::string& scratch() { return scratch_; }
  // Marks scratch bytes appended since `mark` as the next piece.
  std::size_t mark() const { return scratch_.size(); }
  void add_scratch_since(std::size_t mark) {
    if (scratch_.size() > mark) pieces_.push_back({nullptr, mark, scratch_.size() - mark});
  }
  void add_text(std::string_view text) {
    std::size_t m = mark();
    scratch_.append(text);
    add_scratch_since(m);
  }
  void add_view(const char* data, std::size_t length) {
    if (length > 0) pieces_.push_back({data, 0, length});
  }

  bool empty() const { return pieces_.empty(); }
  std::size_t byte_count() const {
    std::size_t n = 0;
    for (const Piece& p : pieces_) n += p.length;
    return n;
  }

  const std::vector<uv_buf_t>& buffers() {
    bufs_.clear();
    for (const Piece& p : pieces_) {
      char* base = p.data ? const_cast<char*>(p.data) : scratch_.data() + p.offset;
      bufs_.push_back(uv_buf_init(base, static_cast<unsigned>(p.length)));
    }
    return bufs_;
  }

  void clear() {
    scratch_.clear();
    pieces_.clear();
  }

 private:
  struct Piece {
    const char* data;  // nullptr: in scratch at offset
    std::size_t offset;
    std::size_t length;
  };
  std::string scratch_;
  std::vector<Piece> pieces_;
  std::vector<uv_buf_t> bufs_;
};

}  // namespace gh
