{
  "targets": [
    {
      "target_name": "pce_crypto",
      "sources": ["module.c", "napi_args.c", "handles.c", "gcm.c", "b64url.c", "bytes_api.c", "text_api.c", "open_text.c", "open_batch.c"],
      "cflags": ["-O3", "-Wall", "-Wextra", "-Werror"],
      "conditions": [
        ["OS=='linux'", {
          # Resolve every OpenSSL symbol against the loading Node at dlopen time: a Node without them
          # (another TLS library) then fails to load the module, and the JavaScript side falls back to
          # node:crypto, instead of aborting on the first call.
          "ldflags": ["-Wl,-z,now"]
        }],
        ["OS=='mac'", {
          "xcode_settings": { "OTHER_LDFLAGS": ["-undefined", "dynamic_lookup"] }
        }]
      ]
    }
  ]
}
