// The driver era one mock library imitates. Compiled once per library with VG_MOCK_BUILD_ERA set to
// the era's number (major * 1000 + minor: 418000 ... 580000), and holds the entry points that came and
// went with driver versions: only those of its era, so a function that era's driver lacks is absent.
#include "scenario.h"

#ifndef VG_MOCK_BUILD_ERA
#error "compile era.cc with -DVG_MOCK_BUILD_ERA=<era number>, e.g. 580000"
#endif

// The entry points every era has live in the mock's static archive; era.cc references their files'
// anchors so that the linker takes them from it.
#define VG_MOCK_USE_GROUP(group)                                                                \
  extern "C" const int vgmockGroup_##group;                                                     \
  __attribute__((used)) static const int *const kUse_##group = &vgmockGroup_##group;

VG_MOCK_USE_GROUP(base)
VG_MOCK_USE_GROUP(client)
VG_MOCK_USE_GROUP(events)

// The entry points drivers added (or dropped) over time: compiled here, for the eras that have them.
#if VG_MOCK_BUILD_ERA >= 470000
#include "entry_v2.inc"
#endif
#if VG_MOCK_BUILD_ERA >= 510000
#include "entry_memory_v2.inc"
#endif
#if VG_MOCK_BUILD_ERA >= 510000 && VG_MOCK_BUILD_ERA != 535098
#include "entry_v3.inc"
#endif
#if VG_MOCK_BUILD_ERA >= 535054
#include "entry_conf_compute.inc"
#endif
#if VG_MOCK_BUILD_ERA >= 535104
#include "entry_detail_list.inc"
#endif
#if VG_MOCK_BUILD_ERA >= 550000
#include "entry_utilization_info.inc"
#endif

namespace vgmock {
Era buildEra() { return eraByNumber(VG_MOCK_BUILD_ERA); }
}  // namespace vgmock
