{
  "targets": [
    {
      "target_name": "crc32c_groups",
      "sources": ["native/crc32c-groups.c"],
      "cflags": ["-O2"]
    }
  ]
}
