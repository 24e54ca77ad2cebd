# node-gyp build: the install-from-source and prebuild path (prebuildify drives node-gyp only).
# Sources come from native/sources.json, the list CMakeLists.txt reads too.
#
# The mock NVML libraries (native/mock) are development and packaging builds only: the npm package ships
# them prebuilt (prebuilds/linux-x64/mock*/), so a user's source install builds just the addon.
# vramguard_mock defaults to 1 in a development tree (one with the mock's self-test, which the package
# leaves out) and to 0 in an installed package; `node-gyp rebuild --vramguard_mock=0|1` overrides it.
# The mocks link libstdc++ statically but drop what they do not use (--gc-sections: std::random_device
# and its arc4random, glibc 2.36) and take the unwinder from libgcc_s.so.1 (the static one wants
# _dl_find_object, glibc 2.35), so they need no newer glibc than the addon (README, "Requirements").
{
  "variables": {
    "vramguard_mock%": "<!(node -p \"+require('fs').existsSync('native/mock/test')\")"
  },
  "targets": [
    {
      "target_name": "vramguard",
      "sources": ["<!@(node -p \"require('./native/sources.json').addon.join(' ')\")"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "libraries": ["-ldl", "-lpthread"]
    }
  ],
  "conditions": [
    ["vramguard_mock==1", {
      "targets": [
        {
          "target_name": "nvidia-ml-mock",
          "type": "shared_library",
          "product_prefix": "lib",
          "product_name": "nvidia-ml",
          "product_extension": "so.1",
          "product_dir": "<(PRODUCT_DIR)/mock",
          "sources": ["<!@(node -p \"require('./native/sources.json').mock.join(' ')\")"],
          "include_dirs": ["native"],
          "cflags!": ["-fno-exceptions"],
          "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
          "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-Wall", "-Wextra"],
          "ldflags": [
            "-Wl,-soname,libnvidia-ml.so.1",
            "-Wl,--version-script=<(module_root_dir)/native/mock/exports.map",
            "-static-libstdc++",
            "-Wl,--gc-sections"
          ],
          "libraries": ["-lpthread"]
        },
        {
          "target_name": "nvidia-ml-mock-legacy",
          "type": "shared_library",
          "product_prefix": "lib",
          "product_name": "nvidia-ml-legacy",
          "product_extension": "so.1",
          "product_dir": "<(PRODUCT_DIR)/mock-legacy",
          "sources": ["<!@(node -p \"require('./native/sources.json').mock.join(' ')\")"],
          "include_dirs": ["native"],
          "defines": ["VG_MOCK_LEGACY_SYMBOLS=1"],
          "cflags!": ["-fno-exceptions"],
          "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
          "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-Wall", "-Wextra"],
          "ldflags": [
            "-Wl,-soname,libnvidia-ml.so.1",
            "-Wl,--version-script=<(module_root_dir)/native/mock/exports.map",
            "-static-libstdc++",
            "-Wl,--gc-sections"
          ],
          "libraries": ["-lpthread"]
        }
      ]
    }]
  ]
}
