// A lock-free "latest value" channel for one writer thread and one reader thread: a triple buffer.
//
// The writer fills its back slot, then swaps it with the middle slot, marking it fresh. The reader,
// when the middle is fresh, swaps it with its front slot. Neither side ever waits or blocks the other,
// slots are reused (no allocation once their vectors have grown), and the reader always sees one whole
// publication, never a torn mix of two.
#pragma once

#include <atomic>
#include <cstdint>

namespace vramguard {

template <typename T>
class LatestBuffer {
 public:
  // Writer side.
  T& back() { return slots_[back_]; }
  void Publish() {
    const uint8_t previous = middle_.exchange(static_cast<uint8_t>(back_ | kFresh), std::memory_order_acq_rel);
    back_ = previous & kIndexMask;
  }

  // Reader side: the newest published value (a default T before the first publication).
  const T& Latest() {
    if (middle_.load(std::memory_order_relaxed) & kFresh) {
      const uint8_t previous = middle_.exchange(front_, std::memory_order_acq_rel);
      front_ = previous & kIndexMask;
    }
    return slots_[front_];
  }

 private:
  static constexpr uint8_t kFresh = 0x4;
  static constexpr uint8_t kIndexMask = 0x3;
  T slots_[3];
  uint8_t back_ = 0;    // owned by the writer
  uint8_t front_ = 1;   // owned by the reader
  std::atomic<uint8_t> middle_{2};
};

}  // namespace vramguard
