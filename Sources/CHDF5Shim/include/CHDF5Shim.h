#ifndef GRAFT_CHDF5SHIM_H
#define GRAFT_CHDF5SHIM_H

// HDF5 exposes its predefined type ids, file-access flags and default property
// lists as macros that expand to function calls, which Swift cannot import.
// This shim returns them as plain values and wraps the callback-based
// iteration APIs. The header deliberately does not include <hdf5.h>:
// ids are `hid_t` (int64_t since HDF5 1.10) and statuses `herr_t` (int).

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Disables HDF5's automatic printing of error stacks to stderr.
void graft_h5_silence_errors(void);

/// Copies the most specific message of the current HDF5 error stack into
/// `buffer` (NUL-terminated, truncated to `capacity`); empty when there is none.
void graft_h5_error_message(char *buffer, size_t capacity);

int64_t graft_h5p_default(void);   ///< H5P_DEFAULT
int64_t graft_h5s_all(void);       ///< H5S_ALL
unsigned graft_h5f_acc_rdonly(void); ///< H5F_ACC_RDONLY
unsigned graft_h5f_acc_rdwr(void);   ///< H5F_ACC_RDWR
unsigned graft_h5f_acc_trunc(void);  ///< H5F_ACC_TRUNC
unsigned graft_h5f_acc_excl(void);   ///< H5F_ACC_EXCL
int64_t graft_h5t_native_float(void); ///< H5T_NATIVE_FLOAT
int64_t graft_h5t_ieee_f32le(void);   ///< H5T_IEEE_F32LE
int64_t graft_h5t_c_s1(void);         ///< H5T_C_S1
size_t graft_h5t_variable(void);      ///< H5T_VARIABLE

/// Positive if `path` is an HDF5 file, zero if it is another kind of file,
/// negative if it cannot be read (H5Fis_hdf5, or H5Fis_accessible from HDF5 1.12 on).
int graft_h5f_is_hdf5(const char *path);

/// A new IEEE binary16 type with the byte order of `base` (a 32-bit float
/// type such as H5T_IEEE_F32LE or H5T_NATIVE_FLOAT), built the way h5py
/// builds numpy's float16. Close with H5Tclose; negative on failure.
int64_t graft_h5t_create_float16(int64_t base);

/// A new link-creation property list that creates missing intermediate
/// groups. Close with H5Pclose; negative on failure.
int64_t graft_h5p_create_intermediate_lcpl(void);

/// Kinds of object reported by `graft_h5_object_kind`.
typedef enum {
    GRAFT_H5_MISSING = 0,
    GRAFT_H5_GROUP = 1,
    GRAFT_H5_DATASET = 2,
    GRAFT_H5_OTHER = 3
} graft_h5_kind;

/// What `name` (relative to `loc`, or absolute) refers to. Never fails:
/// a path through a missing group or a non-group, or a dangling link, is missing.
graft_h5_kind graft_h5_object_kind(int64_t loc, const char *name);

/// Receives one name per call; `context` is the pointer passed to the walker.
typedef void (*graft_h5_name_callback)(const char *name, void *context);

/// Reports the path (relative to `loc`, no leading "/") of every dataset
/// reachable from `loc`, each object once, in name order. Negative on failure.
int graft_h5_visit_datasets(int64_t loc, graft_h5_name_callback report, void *context);

/// Reports the name of every attribute of `loc`, in name order. Negative on failure.
int graft_h5_visit_attributes(int64_t loc, graft_h5_name_callback report, void *context);

#ifdef __cplusplus
}
#endif

#endif
