// libFuzzer target for the mock's input parsers: the JSON reader, the scenario validator and the
// control-file op parser, plus applying a parsed op to the scenario's devices. Every input must either
// parse or be refused with an error (an InputError or std::runtime_error naming the problem); a crash,
// a sanitizer report, an uncaught exception or a hang is a bug.
//   clang++ -fsanitize=fuzzer,address,undefined -std=c++17 -Inative native/mock/test/fuzz_scenario.cc \
//     native/mock/json.cc native/mock/scenario.cc ...   (see run_fuzz.sh)
// The first input byte picks the parser (even: a scenario file, odd: a control-file line).
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../json.h"
#include "../scenario.h"

// The parsers ask which era the library imitates (era.cc answers in a library): the default one.
namespace vgmock {
Era buildEra() { return Era::E580; }
}  // namespace vgmock

namespace {
const vgmock::Scenario &baseScenario() {
  static const vgmock::Scenario *const scenario = new vgmock::Scenario(vgmock::parseScenarioText(
      R"({"devices":[{"memory":{"total":1000000},"processes":[{"pid":7,"usedBytes":10}]},{"memory":{"total":5000}}]})",
      "/fuzz/base.json"));
  return *scenario;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  const bool controlLine = data[0] & 1;
  const std::string text(reinterpret_cast<const char *>(data) + 1, size - 1);
  if (!controlLine) {
    try {
      vgmock::Scenario scenario = vgmock::parseScenarioText(text, "/fuzz/scenario.json");
      (void)scenario;
    } catch (const std::runtime_error &) {
      // refused with a message: fine
    }
    return 0;
  }
  vgmock::json::Value value;
  vgmock::json::ParseError syntax;
  if (!vgmock::json::parse(text, &value, &syntax)) return 0;
  std::vector<vgmock::Device> devices = baseScenario().devices;
  vgmock::OpContext context;
  context.deviceCount = devices.size();
  context.baseDirectory = "/fuzz";
  try {
    const vgmock::Op op = vgmock::parseOp(value, "$", context);
    if (op.kind != vgmock::OpKind::InjectError && op.kind != vgmock::OpKind::ClearErrors &&
        op.kind != vgmock::OpKind::WriteStats) {
      vgmock::applyDeviceOp(op, &devices);  // "" or why it was refused; never throws
    }
  } catch (const vgmock::InputError &) {
  }
  return 0;
}
