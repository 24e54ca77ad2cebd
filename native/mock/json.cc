#include "json.h"

#include <cstdio>
#include <utility>

namespace vgmock {
namespace json {

const Value *Value::find(const std::string &key) const {
  for (const Member &member : members) {
    if (member.key == key) return &member.value;
  }
  return nullptr;
}

bool Value::asUint64(std::uint64_t *out) const {
  if (type != Type::Number || !integer) return false;
  if (negative && magnitude != 0) return false;
  *out = magnitude;
  return true;
}

bool Value::asInt64(std::int64_t *out) const {
  if (type != Type::Number || !integer) return false;
  if (negative) {
    if (magnitude > (std::uint64_t{1} << 63)) return false;
    *out = magnitude == (std::uint64_t{1} << 63) ? INT64_MIN : -static_cast<std::int64_t>(magnitude);
  } else {
    if (magnitude > static_cast<std::uint64_t>(INT64_MAX)) return false;
    *out = static_cast<std::int64_t>(magnitude);
  }
  return true;
}

std::string Value::describe() const {
  switch (type) {
    case Type::Null: return "null";
    case Type::Bool: return boolean ? "true" : "false";
    case Type::Number: return text;
    case Type::String: {
      const std::size_t kMax = 60;
      if (text.size() <= kMax) return quote(text);
      std::size_t cut = kMax;
      while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // whole characters only
      return quote(text.substr(0, cut)) + "...";
    }
    case Type::Array: return "an array";
    case Type::Object: return "an object";
  }
  return "?";
}

std::string quote(const std::string &text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < 0x20 || u == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string pathKey(const std::string &key) {
  bool identifier = !key.empty() && !(key[0] >= '0' && key[0] <= '9');
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$';
    if (!ok) identifier = false;
  }
  return identifier ? "." + key : "[" + quote(key) + "]";
}

namespace {

const std::size_t kMaxDepth = 128;

// Thrown inside the parser only; parse() turns it into a ParseError.
struct SyntaxError {
  std::size_t offset;
  std::string message;
};

class Parser {
 public:
  explicit Parser(const std::string &text) : text_(text) {}

  void parseDocument(Value *out) {
    // A leading UTF-8 byte order mark is tolerated (RFC 8259 section 8.1 allows ignoring it).
    if (text_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;
    skipWhitespace();
    parseValue(out, 0);
    skipWhitespace();
    if (pos_ != text_.size()) fail("unexpected " + describeHere() + " after the JSON value");
  }

 private:
  [[noreturn]] void fail(const std::string &message) { failAt(pos_, message); }
  [[noreturn]] void failAt(std::size_t offset, const std::string &message) { throw SyntaxError{offset, message}; }

  bool atEnd() const { return pos_ >= text_.size(); }
  char peek() const { return atEnd() ? '\0' : text_[pos_]; }

  std::string describeHere() const {
    if (atEnd()) return "end of input";
    const unsigned char c = static_cast<unsigned char>(text_[pos_]);
    char buf[32];
    if (c >= 0x20 && c < 0x7F) {
      std::snprintf(buf, sizeof buf, "'%c'", c);
    } else {
      std::snprintf(buf, sizeof buf, "byte 0x%02X", c);
    }
    return buf;
  }

  void skipWhitespace() {
    while (!atEnd()) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  void expectLiteral(const char *word) {
    const std::size_t start = pos_;
    for (const char *p = word; *p; ++p, ++pos_) {
      if (atEnd() || text_[pos_] != *p) failAt(start, "invalid literal (expected " + std::string(word) + ")");
    }
  }

  void parseValue(Value *out, std::size_t depth) {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    switch (peek()) {
      case '{': parseObject(out, depth); return;
      case '[': parseArray(out, depth); return;
      case '"':
        out->type = Value::Type::String;
        parseString(&out->text);
        return;
      case 't':
        expectLiteral("true");
        out->type = Value::Type::Bool;
        out->boolean = true;
        return;
      case 'f':
        expectLiteral("false");
        out->type = Value::Type::Bool;
        out->boolean = false;
        return;
      case 'n':
        expectLiteral("null");
        out->type = Value::Type::Null;
        return;
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) {
          parseNumber(out);
          return;
        }
        if (atEnd()) fail("unexpected end of input, expected a value");
        if (peek() == '\'') fail("strings must use double quotes");
        fail("unexpected " + describeHere() + ", expected a value");
    }
  }

  void parseObject(Value *out, std::size_t depth) {
    out->type = Value::Type::Object;
    ++pos_;  // '{'
    skipWhitespace();
    if (peek() == '}') {
      ++pos_;
      return;
    }
    for (;;) {
      skipWhitespace();
      if (peek() != '"') {
        if (peek() == '}') fail("trailing comma before '}'");
        fail("expected a member name in double quotes, got " + describeHere());
      }
      const std::size_t keyOffset = pos_;
      Member member;
      parseString(&member.key);
      if (out->find(member.key) != nullptr) failAt(keyOffset, "duplicate key " + quote(member.key));
      skipWhitespace();
      if (peek() != ':') fail("expected ':' after member name, got " + describeHere());
      ++pos_;
      skipWhitespace();
      parseValue(&member.value, depth + 1);
      out->members.push_back(std::move(member));
      skipWhitespace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return;
      }
      fail("expected ',' or '}' after an object member, got " + describeHere());
    }
  }

  void parseArray(Value *out, std::size_t depth) {
    out->type = Value::Type::Array;
    ++pos_;  // '['
    skipWhitespace();
    if (peek() == ']') {
      ++pos_;
      return;
    }
    for (;;) {
      skipWhitespace();
      if (peek() == ']') fail("trailing comma before ']'");
      out->items.emplace_back();
      parseValue(&out->items.back(), depth + 1);
      skipWhitespace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return;
      }
      fail("expected ',' or ']' after an array element, got " + describeHere());
    }
  }

  static bool isDigit(char c) { return c >= '0' && c <= '9'; }

  void parseNumber(Value *out) {
    const std::size_t start = pos_;
    out->type = Value::Type::Number;
    out->negative = false;
    if (peek() == '-') {
      out->negative = true;
      ++pos_;
    }
    if (!isDigit(peek())) fail("expected a digit");
    bool fits = true;
    std::uint64_t magnitude = 0;
    if (peek() == '0') {
      ++pos_;
      if (isDigit(peek())) failAt(pos_ - 1, "numbers must not have leading zeros");
    } else {
      while (isDigit(peek())) {
        const std::uint64_t digit = static_cast<std::uint64_t>(peek() - '0');
        if (magnitude > (UINT64_MAX - digit) / 10) fits = false;
        if (fits) magnitude = magnitude * 10 + digit;
        ++pos_;
      }
    }
    bool integral = true;
    if (peek() == '.') {
      integral = false;
      ++pos_;
      if (!isDigit(peek())) fail("expected a digit after the decimal point");
      while (isDigit(peek())) ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!isDigit(peek())) fail("expected a digit in the exponent");
      while (isDigit(peek())) ++pos_;
    }
    if (out->negative && magnitude > (std::uint64_t{1} << 63)) fits = false;
    out->text = text_.substr(start, pos_ - start);
    out->integer = integral && fits;
    out->magnitude = out->integer ? magnitude : 0;
  }

  unsigned parseHex4() {
    unsigned value = 0;
    for (int i = 0; i < 4; ++i) {
      const int digit = hexDigit(peek());
      if (digit < 0) fail("expected 4 hex digits after \\u");
      value = value * 16 + static_cast<unsigned>(digit);
      ++pos_;
    }
    return value;
  }

  static void appendUtf8(std::string *out, unsigned cp) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xC0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xE0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *out += static_cast<char>(0xF0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // Copies one raw (unescaped) UTF-8 character, rejecting malformed, overlong and surrogate encodings.
  void copyUtf8Char(std::string *out) {
    const unsigned char lead = static_cast<unsigned char>(text_[pos_]);
    std::size_t length;
    unsigned cp;
    if (lead < 0x80) {
      length = 1;
      cp = lead;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2;
      cp = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3;
      cp = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4;
      cp = lead & 0x07;
    } else {
      fail("invalid UTF-8 in string");
    }
    if (pos_ + length > text_.size()) fail("invalid UTF-8 in string");
    for (std::size_t i = 1; i < length; ++i) {
      const unsigned char c = static_cast<unsigned char>(text_[pos_ + i]);
      if ((c & 0xC0) != 0x80) fail("invalid UTF-8 in string");
      cp = (cp << 6) | (c & 0x3F);
    }
    static const unsigned kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      fail("invalid UTF-8 in string");
    }
    out->append(text_, pos_, length);
    pos_ += length;
  }

  void parseString(std::string *out) {
    ++pos_;  // opening quote
    out->clear();
    for (;;) {
      if (atEnd()) fail("unterminated string");
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        fail(c == '\n' ? "unterminated string (raw line break inside a string)"
                       : "raw control character in string (escape it)");
      }
      if (c != '\\') {
        copyUtf8Char(out);
        continue;
      }
      ++pos_;
      const char escape = peek();
      ++pos_;
      switch (escape) {
        case '"': *out += '"'; break;
        case '\\': *out += '\\'; break;
        case '/': *out += '/'; break;
        case 'b': *out += '\b'; break;
        case 'f': *out += '\f'; break;
        case 'n': *out += '\n'; break;
        case 'r': *out += '\r'; break;
        case 't': *out += '\t'; break;
        case 'u': {
          const std::size_t escapeStart = pos_ - 2;
          unsigned cp = parseHex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) failAt(escapeStart, "unpaired low surrogate in \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (peek() != '\\' || pos_ + 1 >= text_.size() || text_[pos_ + 1] != 'u') {
              failAt(escapeStart, "unpaired high surrogate in \\u escape");
            }
            pos_ += 2;
            const unsigned low = parseHex4();
            if (low < 0xDC00 || low > 0xDFFF) failAt(escapeStart, "unpaired high surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          appendUtf8(out, cp);
          break;
        }
        default:
          pos_ -= 2;
          fail("invalid escape sequence in string");
      }
    }
  }

  const std::string &text_;
  std::size_t pos_ = 0;
};

// 1-based line and column (in code points) of a byte offset.
void locate(const std::string &text, std::size_t offset, ParseError *error) {
  std::size_t line = 1;
  std::size_t column = 1;
  if (offset > text.size()) offset = text.size();
  for (std::size_t i = 0; i < offset; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      column = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++column;
    }
  }
  error->line = line;
  error->column = column;
}

}  // namespace

bool parse(const std::string &text, Value *out, ParseError *error) {
  *out = Value();
  try {
    Parser(text).parseDocument(out);
    return true;
  } catch (const SyntaxError &e) {
    *out = Value();
    locate(text, e.offset, error);
    error->message = e.message;
    return false;
  }
}

}  // namespace json
}  // namespace vgmock
