// tryLockFile(fd): flock(fd, LOCK_EX | LOCK_NB). true when this open file description now holds the
// exclusive lock, false when another holds it (EWOULDBLOCK); any other errno throws a JS Error whose
// `code` is the errno name (EBADF, ENOLCK, ...). unlockFile(fd): flock(fd, LOCK_UN).
// Both retry on EINTR and never block. Registered through FunctionEntry (js_guard.h): a thrown
// Napi::Error becomes a JS exception and no C++ exception reaches N-API.
#include "file_lock.h"

#include "js_guard.h"

#include <sys/file.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>

namespace vramguard {
namespace {

int FdArgument(const Napi::CallbackInfo& info, const char* function) {
  const Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(env, std::string(function) + "(fd): fd must be a number");
  }
  const double fd = info[0].As<Napi::Number>().DoubleValue();
  if (!(fd >= 0 && fd <= 2147483647.0) || std::floor(fd) != fd) {
    throw Napi::RangeError::New(env, std::string(function) + "(fd): fd must be a non-negative integer, got " +
                                         info[0].ToString().Utf8Value());
  }
  return static_cast<int>(fd);
}

const char* ErrnoName(int error) {
  switch (error) {
    case EBADF:
      return "EBADF";
    case EINVAL:
      return "EINVAL";
    case ENOLCK:
      return "ENOLCK";
    default:
      return "EIO";
  }
}

Napi::Error ErrnoError(Napi::Env env, const char* function, int error) {
  Napi::Error e = Napi::Error::New(env, std::string(function) + " failed: " + std::strerror(error));
  e.Set("code", ErrnoName(error));
  e.Set("errno", static_cast<double>(error));
  e.Set("syscall", "flock");
  return e;
}

int FlockRetrying(int fd, int operation) {
  int rc;
  do {
    rc = ::flock(fd, operation);
  } while (rc != 0 && errno == EINTR);
  return rc == 0 ? 0 : errno;
}

Napi::Value TryLockFile(const Napi::CallbackInfo& info) {
  const int fd = FdArgument(info, "tryLockFile");
  const int error = FlockRetrying(fd, LOCK_EX | LOCK_NB);
  if (error == 0) return Napi::Boolean::New(info.Env(), true);
  if (error == EWOULDBLOCK) return Napi::Boolean::New(info.Env(), false);
  throw ErrnoError(info.Env(), "tryLockFile", error);
}

Napi::Value UnlockFile(const Napi::CallbackInfo& info) {
  const int fd = FdArgument(info, "unlockFile");
  const int error = FlockRetrying(fd, LOCK_UN);
  if (error != 0) throw ErrnoError(info.Env(), "unlockFile", error);
  return info.Env().Undefined();
}

}  // namespace

void RegisterFileLock(Napi::Env env, Napi::Object exports) {
  exports.Set("tryLockFile", NewFunction(env, "tryLockFile", &FunctionEntry<TryLockFile>));
  exports.Set("unlockFile", NewFunction(env, "unlockFile", &FunctionEntry<UnlockFile>));
}

}  // namespace vramguard
