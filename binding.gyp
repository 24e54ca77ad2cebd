# node-gyp build: the install-from-source and prebuild path (prebuildify drives node-gyp only).
# Sources come from native/sources.json, the list CMakeLists.txt reads too. The mock NVML: one static
# core and one library per driver era (see native/mock/mock_nvml.cc); the era list is sources.json's.
# (gyp links a shared library's static dependencies whole, so the era's own entry points are not in the
# core: era.cc includes the groups its era has.)
#
# The mock NVML libraries are development and packaging builds only: the npm package ships them
# prebuilt (prebuilds/linux-x64/mock*/), so a user's source install builds just the addon.
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
      "sources": [
        "<!@(node -p \"const s = require('./native/sources.json'); [...s.core, ...s.bindings].join(' ')\")"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags!": [
        "-fno-exceptions"
      ],
      "cflags_cc!": [
        "-fno-exceptions",
        "-fno-rtti"
      ],
      "cflags_cc": [
        "-std=c++17",
        "-fvisibility=hidden",
        "-Wall",
        "-Wextra"
      ],
      "libraries": [
        "-ldl",
        "-lpthread"
      ]
    }
  ],
  "conditions": [
    [
      "vramguard_mock==1",
      {
        "targets": [
          {
            "target_name": "nvidia-ml-mock-core",
            "type": "static_library",
            "sources": [
              "<!@(node -p \"require('./native/sources.json').mock.join(' ')\")"
            ],
            "include_dirs": [
              "native"
            ],
            "cflags!": [
              "-fno-exceptions"
            ],
            "cflags_cc!": [
              "-fno-exceptions",
              "-fno-rtti"
            ],
            "cflags_cc": [
              "-std=c++17",
              "-fPIC",
              "-fvisibility=hidden",
              "-fvisibility-inlines-hidden",
              "-Wall",
              "-Wextra"
            ]
          },
          {
            "target_name": "nvidia-ml-mock",
            "type": "shared_library",
            "product_prefix": "lib",
            "product_name": "nvidia-ml",
            "product_extension": "so.1",
            "product_dir": "<(PRODUCT_DIR)/mock",
            "dependencies": [
              "nvidia-ml-mock-core"
            ],
            "sources": [
              "<!(node -p \"require('./native/sources.json').mockEra\")"
            ],
            "defines": [
              "VG_MOCK_BUILD_ERA=580000"
            ],
            "include_dirs": [
              "native"
            ],
            "cflags!": [
              "-fno-exceptions"
            ],
            "cflags_cc!": [
              "-fno-exceptions",
              "-fno-rtti"
            ],
            "cflags_cc": [
              "-std=c++17",
              "-fPIC",
              "-fvisibility=hidden",
              "-fvisibility-inlines-hidden",
              "-Wall",
              "-Wextra"
            ],
            "ldflags": [
              "-Wl,-soname,libnvidia-ml.so.1",
              "-Wl,--version-script=<(module_root_dir)/native/mock/exports.map",
              "-static-libstdc++",
              "-Wl,--gc-sections"
            ],
            "libraries": [
              "-lpthread"
            ]
          },
          {
            "target_name": "nvidia-ml-mock-418",
            "type": "shared_library",
            "product_prefix": "lib",
            "product_name": "nvidia-ml-418",
            "product_extension": "so.1",
            "product_dir": "<(PRODUCT_DIR)/mock-eras",
            "dependencies": [
              "nvidia-ml-mock-core"
            ],
            "sources": [
              "<!(node -p \"require('./native/sources.json').mockEra\")"
            ],
            "defines": [
              "VG_MOCK_BUILD_ERA=418000"
            ],
            "include_dirs": [
              "native"
            ],
            "cflags!": [
              "-fno-exceptions"
            ],
            "cflags_cc!": [
              "-fno-exceptions",
              "-fno-rtti"
            ],
            "cflags_cc": [
              "-std=c++17",
              "-fPIC",
              "-fvisibility=hidden",
              "-fvisibility-inlines-hidden",
              "-Wall",
              "-Wextra"
            ],
            "ldflags": [
              "-Wl,-soname,libnvidia-ml.so.1",
              "-Wl,--version-script=<(module_root_dir)/native/mock/exports.map",
              "-static-libstdc++",
              "-Wl,--gc-sections"
            ],
            "libraries": [
              "-lpthread"
            ]
          },
          {
            "target_name": "nvidia-ml-mock-470",
            "type": "shared_library",
            "product_prefix": "lib",
            "product_name": "nvidia-ml-470",
            "product_extension": "so.1",
            "product_dir": "<(PRODUCT_DIR)/mock-eras",
            "dependencies": [
              "nvidia-ml-mock-core"
            ],
            "sources": [
              "<!(node -p \"require('./native/sources.json').mockEra\")"
            ],
            "defines": [
              "VG_MOCK_BUILD_ERA=470000"
            ],
            "include_dirs": [
              "native"
            ],
            "cflags!": [
              "-fno-exceptions"
            ],
            "cflags_cc!": [
              "-fno-exceptions",
              "-fno-rtti"
            ],
            "cflags_cc": [
              "-std=c++17",
              "-fPIC",
              "-fvisibility=hidden",
              "-fvisibility-inlines-hidden",
              "-Wall",
              "-Wextra"
            ],
            "ldflags": [
              "-Wl,-soname,libnvidia-ml.so.1",
              "-Wl,--version-script=<(module_root_dir)/native/mock/exports.map",
              "-static-libstdc++",
              "-Wl,--gc-sections"
            ],
            "libraries": [
              "-lpthread"
            ]
          },
          {
            "target_name": "nvidia-ml-mock-510",
            "type": "shared_library",
            "product_prefix": "lib",
            "product_name": "nvidia-ml-510",
            "product_extension": "so.1",
            "product_dir": "<(PRODUCT_DIR)/mock-eras",
            "dependencies": [
              "nvidia-ml-mock-core"
            ],
            "sources": [
              "<!(node -p \"require('./native/sources.json').mockEra\")"
            ],
            "defines": [
              "VG_MOCK_BUILD_ERA=510000"
            ],
            "include_dirs": [
              "native"
            ],
            "cflags!": [
              "-fno-exceptions"
            ],
            "cflags_cc!": [
              "-fno-exceptions",
              "-fno-rtti"
            ],
            "cflags_cc": [
              "-std=c++17",
              "-fPIC",
              "-fvisibility=hidden",
              "-fvisibility-inlines-hidden",
              "-Wall",
              "-Wextra"
            ],
            "ldflags": [
              "-Wl,-soname,libnvidia-ml.so.1",
              "-Wl,--version-script=<(module_root_dir)/native/mock/exports.map",
              "-static-libstdc++",
              "-Wl,--gc-sections"
            ],
            "libraries": [
              "-lpthread"
            ]
          },
          {
            "target_name": "nvidia-ml-mock-535.54",
            "type": "shared_library",
            "product_prefix": "lib",
            "product_name": "nvidia-ml-535.54",
            "product_extension": "so.1",
            "product_dir": "<(PRODUCT_DIR)/mock-eras",
            "dependencies": [
              "nvidia-ml-mock-core"
            ],
            "sources": [
              "<!(node -p \"require('./native/sources.json').mockEra\")"
            ],
            "defines": [
              "VG_MOCK_BUILD_ERA=535054"
            ],
            "include_dirs": [
              "native"
            ],
            "cflags!": [
              "-fno-exceptions"
            ],
            "cflags_cc!": [
              "-fno-exceptions",
              "-fno-rtti"
            ],
            "cflags_cc": [
              "-std=c++17",
              "-fPIC",
              "-fvisibility=hidden",
              "-fvisibility-inlines-hidden",
              "-Wall",
              "-Wextra"
            ],
            "ldflags": [
              "-Wl,-soname,libnvidia-ml.so.1",
              "-Wl,--version-script=<(module_root_dir)/native/mock/exports.map",
              "-static-libstdc++",
              "-Wl,--gc-sections"
            ],
            "libraries": [
              "-lpthread"
            ]
          },
          {
            "target_name": "nvidia-ml-mock-535.98",
            "type": "shared_library",
            "product_prefix": "lib",
            "product_name": "nvidia-ml-535.98",
            "product_extension": "so.1",
            "product_dir": "<(PRODUCT_DIR)/mock-eras",
            "dependencies": [
              "nvidia-ml-mock-core"
            ],
            "sources": [
              "<!(node -p \"require('./native/sources.json').mockEra\")"
            ],
            "defines": [
              "VG_MOCK_BUILD_ERA=535098"
            ],
            "include_dirs": [
              "native"
            ],
            "cflags!": [
              "-fno-exceptions"
            ],
            "cflags_cc!": [
              "-fno-exceptions",
              "-fno-rtti"
            ],
            "cflags_cc": [
              "-std=c++17",
              "-fPIC",
              "-fvisibility=hidden",
              "-fvisibility-inlines-hidden",
              "-Wall",
              "-Wextra"
            ],
            "ldflags": [
              "-Wl,-soname,libnvidia-ml.so.1",
              "-Wl,--version-script=<(module_root_dir)/native/mock/exports.map",
              "-static-libstdc++",
              "-Wl,--gc-sections"
            ],
            "libraries": [
              "-lpthread"
            ]
          },
          {
            "target_name": "nvidia-ml-mock-535.104",
            "type": "shared_library",
            "product_prefix": "lib",
            "product_name": "nvidia-ml-535.104",
            "product_extension": "so.1",
            "product_dir": "<(PRODUCT_DIR)/mock-eras",
            "dependencies": [
              "nvidia-ml-mock-core"
            ],
            "sources": [
              "<!(node -p \"require('./native/sources.json').mockEra\")"
            ],
            "defines": [
              "VG_MOCK_BUILD_ERA=535104"
            ],
            "include_dirs": [
              "native"
            ],
            "cflags!": [
              "-fno-exceptions"
            ],
            "cflags_cc!": [
              "-fno-exceptions",
              "-fno-rtti"
            ],
            "cflags_cc": [
              "-std=c++17",
              "-fPIC",
              "-fvisibility=hidden",
              "-fvisibility-inlines-hidden",
              "-Wall",
              "-Wextra"
            ],
            "ldflags": [
              "-Wl,-soname,libnvidia-ml.so.1",
              "-Wl,--version-script=<(module_root_dir)/native/mock/exports.map",
              "-static-libstdc++",
              "-Wl,--gc-sections"
            ],
            "libraries": [
              "-lpthread"
            ]
          },
          {
            "target_name": "nvidia-ml-mock-550",
            "type": "shared_library",
            "product_prefix": "lib",
            "product_name": "nvidia-ml-550",
            "product_extension": "so.1",
            "product_dir": "<(PRODUCT_DIR)/mock-eras",
            "dependencies": [
              "nvidia-ml-mock-core"
            ],
            "sources": [
              "<!(node -p \"require('./native/sources.json').mockEra\")"
            ],
            "defines": [
              "VG_MOCK_BUILD_ERA=550000"
            ],
            "include_dirs": [
              "native"
            ],
            "cflags!": [
              "-fno-exceptions"
            ],
            "cflags_cc!": [
              "-fno-exceptions",
              "-fno-rtti"
            ],
            "cflags_cc": [
              "-std=c++17",
              "-fPIC",
              "-fvisibility=hidden",
              "-fvisibility-inlines-hidden",
              "-Wall",
              "-Wextra"
            ],
            "ldflags": [
              "-Wl,-soname,libnvidia-ml.so.1",
              "-Wl,--version-script=<(module_root_dir)/native/mock/exports.map",
              "-static-libstdc++",
              "-Wl,--gc-sections"
            ],
            "libraries": [
              "-lpthread"
            ]
          }
        ]
      }
    ]
  ]
}
