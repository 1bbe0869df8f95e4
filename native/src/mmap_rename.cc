// Atomic directory replacement for checkpoint writing: renameat2 with
// RENAME_EXCHANGE swaps two paths in one step, so a reader sees either the
// old or the new checkpoint directory, never neither. Node has no binding.
#include "common.h"
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <stdio.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

namespace sv {

// renameExchange(a, b) -> true if swapped; false if this kernel or filesystem
// cannot (EINVAL, ENOSYS, EOPNOTSUPP), so the caller falls back; throws otherwise.
SV_KERNEL(renameExchange) {
  checkArgc(info, 2, "renameExchange");
  check(info[0].IsString() && info[1].IsString(), "renameExchange: both paths must be strings");
  std::string a = info[0].As<Napi::String>().Utf8Value(), b = info[1].As<Napi::String>().Utf8Value();
  if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) == 0) return Napi::Boolean::New(info.Env(), true);
  int e = errno;
  if (e == EINVAL || e == ENOSYS || e == EOPNOTSUPP) return Napi::Boolean::New(info.Env(), false);
  throw KernelError("renameExchange: cannot swap '" + a + "' and '" + b + "': " + std::strerror(e) + " (errno " + std::to_string(e) + ")");
}

}  // namespace sv
