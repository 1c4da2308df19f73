/* Included first by the generated module: libuv and the system headers the
 * shim needs.  Kept free of Python.h on purpose. */
#include <uv.h>
#include <string.h>
#include <stdint.h>
#ifdef _WIN32
#  include <winsock2.h>
#  include <ws2tcpip.h>
#else
#  include <sys/types.h>
#  include <sys/socket.h>
#  include <netinet/in.h>
#  include <arpa/inet.h>
#  include <netdb.h>
#  include <sys/stat.h>
#  include <errno.h>
#  ifdef __linux__
#    include <sys/epoll.h>
#  endif
#endif
