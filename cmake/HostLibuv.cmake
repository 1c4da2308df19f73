# UVFFI_LIBUV=HOST: uvffi for a process that already has libuv in it.
#
# A host program that runs libuv itself -- Node.js, which links libuv
# statically and exports its uv_* symbols -- and embeds Python must not get
# a second copy of libuv from uvffi: both copies would touch the same
# uv_loop_t.  In this mode uvffi is compiled against the host's uv.h
# (UVFFI_LIBUV_INCLUDE, e.g. /usr/include/node) and links no libuv at all:
# the extension keeps its uv_* references undefined and the dynamic loader
# binds them, when Python imports uvffi._uv, to the symbols of the process
# (the host's executable or a library it loaded with RTLD_GLOBAL).
#
# Such a build imports only inside such a host; a plain python refuses it
# with "ImportError: ... undefined symbol: uv_...", which uvffi/__init__.py
# rewords (it recognises the uvffi/_libuv_host.py written below).
#
# Included by CMakeLists.txt when UVFFI_LIBUV is HOST; defines the INTERFACE
# target uvffi_libuv (include directory only), after which the searches for
# a system or vendored libuv are skipped.
#
#   UVFFI_LIBUV_INCLUDE  the directory of the host's uv.h (cache variable;
#                        the environment variable of the same name is read
#                        when the cache variable is empty)

set_property(CACHE UVFFI_LIBUV APPEND PROPERTY STRINGS HOST)
set(UVFFI_LIBUV_INCLUDE "" CACHE PATH
    "UVFFI_LIBUV=HOST: the directory of the host's uv.h (Node.js: /usr/include/node)")
set(_uvffi_host_include "${UVFFI_LIBUV_INCLUDE}")
if(NOT _uvffi_host_include AND DEFINED ENV{UVFFI_LIBUV_INCLUDE})
  set(_uvffi_host_include "$ENV{UVFFI_LIBUV_INCLUDE}")
endif()

if(WIN32)
  message(FATAL_ERROR
    "UVFFI_LIBUV=HOST is not supported on Windows: a DLL cannot leave "
    "libuv's symbols to be found in the process at load time. Build with "
    "UVFFI_LIBUV=SYSTEM or VENDOR.")
endif()
if(NOT _uvffi_host_include)
  message(FATAL_ERROR
    "UVFFI_LIBUV=HOST needs UVFFI_LIBUV_INCLUDE: the directory of the host "
    "program's uv.h, e.g. UVFFI_LIBUV_INCLUDE=/usr/include/node for Node.js "
    "(environment variable, or -DUVFFI_LIBUV_INCLUDE=... for cmake).")
endif()
get_filename_component(_uvffi_host_include "${_uvffi_host_include}" ABSOLUTE)
if(NOT EXISTS "${_uvffi_host_include}/uv.h"
   OR NOT EXISTS "${_uvffi_host_include}/uv/version.h")
  message(FATAL_ERROR
    "UVFFI_LIBUV=HOST: UVFFI_LIBUV_INCLUDE=${_uvffi_host_include} has no "
    "uv.h and uv/version.h. Point it at the host's libuv headers (Node.js: "
    "/usr/include/node, from the nodejs or libnode-dev package, or the "
    "include/node directory of a Node.js release).")
endif()

file(STRINGS "${_uvffi_host_include}/uv/version.h" _v
     REGEX "^#define UV_VERSION_(MAJOR|MINOR|PATCH) ")
string(REGEX REPLACE ".*MAJOR ([0-9]+).*MINOR ([0-9]+).*PATCH ([0-9]+).*"
       "\\1.\\2.\\3" _uvffi_host_version "${_v}")
if(_uvffi_host_version VERSION_LESS UVFFI_LIBUV_MIN_VERSION)
  message(FATAL_ERROR
    "UVFFI_LIBUV=HOST: the headers in ${_uvffi_host_include} are libuv "
    "${_uvffi_host_version}; uvffi needs libuv >= ${UVFFI_LIBUV_MIN_VERSION}.")
endif()
message(STATUS "uvffi: libuv ${_uvffi_host_version} of the host process "
               "(headers from ${_uvffi_host_include}; symbols bound at load time)")

add_library(uvffi_libuv INTERFACE)
target_include_directories(uvffi_libuv INTERFACE "${_uvffi_host_include}")
if(APPLE)
  target_link_options(uvffi_libuv INTERFACE "LINKER:-undefined,dynamic_lookup")
else()
  # Undefined symbols are what ld does for a shared object anyway; say it
  # explicitly in case LDFLAGS carries -z defs / --no-undefined.
  target_link_options(uvffi_libuv INTERFACE "LINKER:-z,undefs")
endif()
set(_uvffi_have_libuv TRUE)
if(UVFFI_EXAMPLES)
  # (a normal variable: hides the cache option from the rest of the build)
  message(WARNING "uvffi: UVFFI_EXAMPLES is ignored with UVFFI_LIBUV=HOST: "
                  "the C programs of examples/ and benchmarks/ link a libuv, "
                  "and this build has none.")
  set(UVFFI_EXAMPLES OFF)
endif()
set(_uvffi_vendored 0)   # (python -m uvffi: not linked in from a source tree)

# The marker that lets uvffi explain a failed import (uvffi/__init__.py).
file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/_libuv_host.py"
  "# Written by cmake/HostLibuv.cmake: this uvffi was built with UVFFI_LIBUV=HOST.\n"
  "# Its libuv is the one of the process that loads it (never a copy of its own).\n"
  "INCLUDE = r\"\"\"${_uvffi_host_include}\"\"\"\n"
  "VERSION = \"${_uvffi_host_version}\"\n")
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/_libuv_host.py" DESTINATION uvffi)
