# node-gyp build: the install-from-source and prebuild path (prebuildify drives node-gyp only).
# Sources come from native/sources.json, the list CMakeLists.txt reads too.
{
  "targets": [
    {
      "target_name": "vramguard",
      "sources": ["<!@(node -p \"const s = require('./native/sources.json'); [...s.core, ...s.bindings].join(' ')\")"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "libraries": ["-ldl", "-lpthread"]
    },
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
        "-static-libgcc"
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
        "-static-libgcc"
      ],
      "libraries": ["-lpthread"]
    }
  ]
}
