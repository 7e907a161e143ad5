#include <cblas.h>
// glibc's allocator controls (mallopt), used to keep large activation buffers for reuse.
#include <malloc.h>
