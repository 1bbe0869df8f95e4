{
  "targets": [
    {
      "target_name": "seedvl_native",
      "sources": [
        "<!@(node -p \"require('fs').readdirSync('native/src').filter(f=>f.endsWith('.cc')).map(f=>'native/src/'+f).join(' ')\")"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/src"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-ffp-contract=fast", "-fno-math-errno", "-Wall", "-Wno-unused-function"],
      "cflags": ["-O3"],
      "libraries": ["-lpthread"]
    }
  ]
}
