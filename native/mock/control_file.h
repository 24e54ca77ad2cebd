// The mock's live control file: other processes append one JSON op per line; the mock follows it.
#ifndef VRAMGUARD_MOCK_CONTROL_FILE_H
#define VRAMGUARD_MOCK_CONTROL_FILE_H

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace vgmock {

const std::size_t kMaxControlLineBytes = 1u << 20;  // longer control lines are skipped with a warning


// Follows the control file: other processes append one JSON op per line (each line in one write call).
// Only complete lines (ending in '\n') are taken; a partial last line is read again once it is complete.
// The file may not exist yet. When it is found smaller than what was read, replaced by another file, or
// no longer has a line break where the last line read ended, it is read again from the start.
class ControlFile {
 public:
  struct Line {
    std::uint64_t number;  // 1-based, counted from the start of the file
    std::string text;
  };

  explicit ControlFile(std::string path) : path_(std::move(path)) {}

  const std::string &path() const { return path_; }

  void readNewLines(std::vector<Line> *lines, std::vector<std::string> *warnings) {
    struct stat st;
    if (stat(path_.c_str(), &st) != 0) {
      known_ = false;  // absent (perhaps not created yet): start from the beginning once it appears
      return;
    }
    if (!S_ISREG(st.st_mode)) return;
    if (!known_ || st.st_dev != device_ || st.st_ino != inode_) {
      restart();
      known_ = true;
      device_ = st.st_dev;
      inode_ = st.st_ino;
    } else if (static_cast<std::uint64_t>(st.st_size) < offset_) {
      restart();  // truncated
    }
    const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
    if (size == offset_) return;
    // Only a partial line is left past offset_: read again once the file changes.
    if (size == scannedSize_ && st.st_mtim.tv_sec == scannedMtime_.tv_sec &&
        st.st_mtim.tv_nsec == scannedMtime_.tv_nsec) {
      return;
    }
    scannedSize_ = size;
    scannedMtime_ = st.st_mtim;

    const int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    if (offset_ > 0) {
      char previous = 0;
      if (pread(fd, &previous, 1, static_cast<off_t>(offset_ - 1)) != 1 || previous != '\n') restart();  // rewritten
    }
    std::string pending;  // bytes from offset_ on that do not yet end in '\n'
    std::uint64_t readAt = offset_;
    char buf[65536];
    for (;;) {
      const ssize_t n = pread(fd, buf, sizeof buf, static_cast<off_t>(readAt));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      readAt += static_cast<std::uint64_t>(n);
      pending.append(buf, static_cast<std::size_t>(n));
      std::size_t start = 0;
      for (std::size_t newline; (newline = pending.find('\n', start)) != std::string::npos; start = newline + 1) {
        ++lineNumber_;
        if (skippingLongLine_) {
          skippingLongLine_ = false;  // the end of a line already reported as too long
        } else {
          lines->push_back(Line{lineNumber_, pending.substr(start, newline - start)});
        }
        offset_ += newline + 1 - start;
      }
      pending.erase(0, start);
      if (pending.size() > kMaxControlLineBytes) {
        if (!skippingLongLine_) {
          warnings->push_back("control " + path_ + ":" + std::to_string(lineNumber_ + 1) + ": line longer than " +
                              std::to_string(kMaxControlLineBytes) + " bytes skipped");
        }
        skippingLongLine_ = true;
        offset_ += pending.size();
        pending.clear();
      }
    }
    close(fd);
  }

 private:
  void restart() {
    offset_ = 0;
    lineNumber_ = 0;
    skippingLongLine_ = false;
    scannedSize_ = UINT64_MAX;
  }

  std::string path_;
  bool known_ = false;
  dev_t device_ = 0;
  ino_t inode_ = 0;
  std::uint64_t offset_ = 0;  // everything before it has been taken (it follows a '\n')
  std::uint64_t lineNumber_ = 0;
  bool skippingLongLine_ = false;
  std::uint64_t scannedSize_ = UINT64_MAX;  // size and mtime when last read (to skip re-reading a partial line)
  timespec scannedMtime_ = {0, 0};
};

}  // namespace vgmock

#endif  // VRAMGUARD_MOCK_CONTROL_FILE_H
