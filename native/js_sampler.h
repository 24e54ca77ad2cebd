// The JS Sampler class (js_sampler.cc): new Sampler({ intervalMs, devices, libraryPath }, onEvents) with
// start, stop, latest, publishedSequence, setWatermarks, requestSample and setKeepAlive.
#pragma once

#include <napi.h>

#include <set>

namespace vramguard {

class SamplerWrap;

// Per environment (napi instance data): every Sampler not yet finalized, so that the environment's
// cleanup hook can stop them.
struct AddonData {
  std::set<SamplerWrap*> samplers;
};

// The Sampler constructor for exports.
Napi::Function DefineSampler(Napi::Env env);

// The environment is going away (worker termination, process teardown): stops and joins every sampler
// of `data`, which never touch it again.
void DetachSamplers(AddonData& data) noexcept;

}  // namespace vramguard
