// The rule at the JavaScript boundary: no C++ exception ever reaches N-API.
//
// node-addon-api (built with C++ exceptions) turns a failed N-API call into a thrown Napi::Error, and
// its own wrappers turn a caught Napi::Error back into a JS exception with napi_throw. While an
// environment tears down (process exit, worker termination) JS can no longer run: N-API calls answer
// napi_pending_exception, napi_throw fails too, and node-addon-api then throws from inside its catch
// handler, through a noexcept frame: std::terminate, "terminate called after throwing an instance of
// 'Napi::Error'". Every entry point of the addon (methods, functions, the constructor, thread-safe
// function callbacks, finalizers, cleanup hooks) therefore runs its body inside one of these guards,
// which hand errors back with raw N-API calls whose failure is ignored: when the environment cannot take
// an exception any more, there is no one left to tell.
#pragma once

#include <napi.h>

#include <exception>

namespace vramguard {

// Makes the exception in flight (inside a catch block) pending in JS, if JS can still take it.
inline void ThrowCurrentException(napi_env env) noexcept {
  try {
    throw;
  } catch (const Napi::Error& error) {
    try {
      napi_value value = error.Value();
      if (value != nullptr) napi_throw(env, value);  // status ignored: see the header comment
    } catch (...) {
      napi_throw_error(env, nullptr, "vramguard: native error while the environment is stopping");
    }
  } catch (const std::exception& error) {
    napi_throw_error(env, nullptr, error.what());
  } catch (...) {
    napi_throw_error(env, nullptr, "vramguard: unexpected native exception");
  }
}

// Runs body; an exception becomes a pending JS exception and an empty value.
template <typename Body>
Napi::Value GuardValue(napi_env env, Body&& body) noexcept {
  try {
    return body();
  } catch (...) {
    ThrowCurrentException(env);
    return Napi::Value();
  }
}

// For callbacks that have no JS caller to report to (finalizers, cleanup hooks, thread-safe function
// callbacks during teardown): an exception is dropped, never propagated.
template <typename Body>
void GuardSilently(Body&& body) noexcept {
  try {
    body();
  } catch (...) {
  }
}

// Throws the N-API failure as a Napi::Error (inside a guarded body).
inline void Check(napi_env env, napi_status status) {
  if (status != napi_ok) throw Napi::Error::New(env);
}

// Entry points as raw N-API callbacks, so that no node-addon-api wrapper (whose catch handler can
// itself throw while the environment stops) sits between Node and the guard.
template <Napi::Value (*Function)(const Napi::CallbackInfo&)>
napi_value FunctionEntry(napi_env env, napi_callback_info info) noexcept {
  return GuardValue(env, [&] {
    Napi::CallbackInfo callbackInfo(env, info);
    return Function(callbackInfo);
  });
}

// A method of a class whose instances were napi_wrap'ped with a T*.
template <typename T, Napi::Value (T::*Method)(const Napi::CallbackInfo&)>
napi_value MethodEntry(napi_env env, napi_callback_info info) noexcept {
  return GuardValue(env, [&] {
    Napi::CallbackInfo callbackInfo(env, info);
    void* self = nullptr;
    Check(env, napi_unwrap(env, callbackInfo.This(), &self));
    if (self == nullptr) throw Napi::TypeError::New(env, "method called on an object that is not a vramguard native object");
    return (static_cast<T*>(self)->*Method)(callbackInfo);
  });
}

template <typename T, Napi::Value (T::*Method)(const Napi::CallbackInfo&)>
napi_property_descriptor MethodProperty(const char* name) {
  return {name, nullptr, &MethodEntry<T, Method>, nullptr, nullptr, nullptr, napi_default, nullptr};
}

inline Napi::Function NewFunction(Napi::Env env, const char* name, napi_callback callback) {
  napi_value function = nullptr;
  Check(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, nullptr, &function));
  return Napi::Function(env, function);
}

}  // namespace vramguard
