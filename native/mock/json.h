// A small, strict JSON reader (RFC 8259) for the mock NVML library's scenario and control files.
//
// Strict means: no comments, no trailing commas, no leading zeros, no duplicate keys in one object,
// no raw control characters or invalid UTF-8 inside strings, nothing but whitespace after the value.
// Integers written without a fraction or exponent are kept exact (up to 2^64-1, or down to -2^63);
// other numbers keep only their literal text, which is all the scenario format needs.
#ifndef VRAMGUARD_MOCK_JSON_H
#define VRAMGUARD_MOCK_JSON_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vgmock {
namespace json {

// The value of one hexadecimal digit, or -1 when c is not one.
inline int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

struct Member;

class Value {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  Type type = Type::Null;
  bool boolean = false;
  // String: the decoded contents (UTF-8). Number: the literal exactly as written.
  std::string text;
  // Number only: true when written as an integer literal that fits in uint64 (or int64 when negative).
  bool integer = false;
  bool negative = false;
  std::uint64_t magnitude = 0;
  std::vector<Value> items;     // Array
  std::vector<Member> members;  // Object, in file order

  bool isNull() const { return type == Type::Null; }
  bool isObject() const { return type == Type::Object; }
  bool isArray() const { return type == Type::Array; }
  bool isString() const { return type == Type::String; }
  bool isBool() const { return type == Type::Bool; }

  // The member named key, or nullptr (objects only).
  const Value *find(const std::string &key) const;
  // A non-negative integer literal ("-0" counts as 0).
  bool asUint64(std::uint64_t *out) const;
  // An integer literal within int64.
  bool asInt64(std::int64_t *out) const;
  // How the value reads in an error message: "abc" (quoted, shortened), 1.5, true, null, an object, an array.
  std::string describe() const;
};

struct Member {
  std::string key;
  Value value;
};

struct ParseError {
  std::size_t line = 0;    // 1-based
  std::size_t column = 0;  // 1-based, in characters (UTF-8 code points)
  std::string message;
};

// Parses text as exactly one JSON value. Returns false and fills *error on any syntax error.
bool parse(const std::string &text, Value *out, ParseError *error);

// text as a JSON string literal, quotes included.
std::string quote(const std::string &text);

// A JSON path step: ".key" when key is an identifier, else "[\"key\"]".
std::string pathKey(const std::string &key);

}  // namespace json
}  // namespace vgmock

#endif  // VRAMGUARD_MOCK_JSON_H
