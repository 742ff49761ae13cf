# External libraries, each for its own job (DESIGN.md section 2).
find_package(PkgConfig REQUIRED)
find_package(OpenSSL 3.0 REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
pkg_check_modules(LMDB REQUIRED IMPORTED_TARGET lmdb)
pkg_check_modules(LIBEVENT REQUIRED IMPORTED_TARGET libevent libevent_pthreads)
pkg_check_modules(P11KIT REQUIRED IMPORTED_TARGET p11-kit-1)
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)

# keytrail-logd's allocator.  Its threads hand requests, proofs and
# SoftHSM's and OpenSSL's many small buffers to one another, which the C
# library's malloc serves through locked arenas and frequent fastbin
# consolidation; tcmalloc's per-thread caches give the daemon 2-8% more
# signatures per second on two cores (docs/performance.md).  Only the
# daemon links it, never a sanitizer build (those bring their own malloc),
# and without the library the daemon simply uses the C library's.
option(KT_TCMALLOC
  "Link keytrail-logd with tcmalloc (Debian: libtcmalloc-minimal4) if present" ON)
set(KT_MALLOC_LIBS "")
if(KT_TCMALLOC AND NOT KT_SANITIZE AND NOT CMAKE_C_FLAGS MATCHES "-fsanitize")
  find_library(KT_TCMALLOC_LIB NAMES tcmalloc_minimal libtcmalloc_minimal.so.4)
  if(KT_TCMALLOC_LIB)
    set(KT_MALLOC_LIBS ${KT_TCMALLOC_LIB})
    message(STATUS "keytrail-logd allocator: ${KT_TCMALLOC_LIB}")
  else()
    message(STATUS "keytrail-logd allocator: the C library's (no tcmalloc)")
  endif()
endif()
