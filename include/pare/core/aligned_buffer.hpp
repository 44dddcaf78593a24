// aligned_buffer<T>: an owning, 64-byte-aligned, uninitialised-by-default array for kernel data.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

#include "pare/core/tensor_view.hpp"

PARE_NAMESPACE_BEGIN

/// Owning array of trivially copyable T aligned to `alignment` bytes (default 64, a
/// cache line and one AVX-512 register). Elements are zero-initialised.
template <class T, std::size_t Alignment = 64>
class aligned_buffer {
  static_assert(std::is_trivially_copyable_v<T>, "aligned_buffer<T>: T must be trivially copyable");
  static_assert(Alignment >= alignof(T) && (Alignment & (Alignment - 1)) == 0,
                "aligned_buffer<T, Alignment>: Alignment must be a power of two >= alignof(T)");

 public:
  aligned_buffer() = default;
  explicit aligned_buffer(std::size_t n) : size_(n) {
    if (n == 0) return;
    const std::size_t bytes = ((n * sizeof(T) + Alignment - 1) / Alignment) * Alignment;
    void* p = ::operator new(bytes, std::align_val_t(Alignment));
    std::memset(p, 0, bytes);
    data_.reset(static_cast<T*>(p));
  }
  aligned_buffer(const aligned_buffer& o) : aligned_buffer(o.size_) {
    if (size_) std::memcpy(data_.get(), o.data_.get(), size_ * sizeof(T));
  }
  aligned_buffer& operator=(const aligned_buffer& o) {
    if (this != &o) {
      aligned_buffer tmp(o);
      swap(tmp);
    }
    return *this;
  }
  aligned_buffer(aligned_buffer&&) noexcept = default;
  aligned_buffer& operator=(aligned_buffer&&) noexcept = default;

  void swap(aligned_buffer& o) noexcept {
    std::swap(size_, o.size_);
    data_.swap(o.data_);
  }

  T* data() noexcept { return data_.get(); }
  const T* data() const noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  T& operator[](std::size_t i) noexcept { return data_.get()[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_.get()[i]; }
  T* begin() noexcept { return data(); }
  T* end() noexcept { return data() + size_; }
  const T* begin() const noexcept { return data(); }
  const T* end() const noexcept { return data() + size_; }

  tensor_view<T> view() noexcept { return tensor_view<T>(data(), shape_t{size_}); }
  tensor_view<const T> view() const noexcept { return tensor_view<const T>(data(), shape_t{size_}); }

 private:
  struct deleter {
    void operator()(T* p) const noexcept { ::operator delete(p, std::align_val_t(Alignment)); }
  };
  std::size_t size_ = 0;
  std::unique_ptr<T, deleter> data_;
};

PARE_NAMESPACE_END
