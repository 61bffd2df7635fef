// Result<T>: expected failures as values. An Error carries a human message; callers add
// context as it travels up. tl::expected (Debian's libexpected-dev) stands in for
// std::expected until the toolchain has C++23.
#pragma once

#include <string>
#include <tl/expected.hpp>
#include <utility>

namespace gh {

struct Error {
  std::string message;
};

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(std::string message) {
  return tl::unexpected<Error>(Error{std::move(message)});
}

}  // namespace gh
