#include "CHDF5Shim.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void graft_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

typedef struct {
    char *buffer;
    size_t capacity;
} message_sink;

// Walking upward, the first entry is the most specific error.
static herr_t keep_innermost(unsigned n, const H5E_error2_t *error, void *data) {
    message_sink *sink = data;
    if (sink->buffer[0] != '\0') return 0;
    const char *text = error->desc;
    char minor[256];
    if (text == NULL || text[0] == '\0') {
        if (H5Eget_msg(error->min_num, NULL, minor, sizeof minor) <= 0) return 0;
        text = minor;
    }
    snprintf(sink->buffer, sink->capacity, "%s", text);
    (void)n;
    return 0;
}

void graft_h5_error_message(char *buffer, size_t capacity) {
    if (capacity == 0) return;
    buffer[0] = '\0';
    message_sink sink = {buffer, capacity};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, &sink);
}

int64_t graft_h5p_default(void) { return H5P_DEFAULT; }
int64_t graft_h5s_all(void) { return H5S_ALL; }
unsigned graft_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
unsigned graft_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
unsigned graft_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
unsigned graft_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
int64_t graft_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
int64_t graft_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
int64_t graft_h5t_c_s1(void) { return H5T_C_S1; }
size_t graft_h5t_variable(void) { return H5T_VARIABLE; }

int graft_h5f_is_hdf5(const char *path) {
#if H5_VERSION_GE(1, 12, 0)
    return H5Fis_accessible(path, H5P_DEFAULT);
#else
    return H5Fis_hdf5(path);
#endif
}

int64_t graft_h5t_create_float16(int64_t base) {
    hid_t type = H5Tcopy(base);
    if (type < 0) return type;
    // Sign bit 15, exponent bits 10-14 (bias 15), mantissa bits 0-9.
    if (H5Tset_fields(type, 15, 10, 5, 0, 10) < 0 || H5Tset_size(type, 2) < 0 ||
        H5Tset_ebias(type, 15) < 0) {
        H5Tclose(type);
        return -1;
    }
    return type;
}

int64_t graft_h5p_create_intermediate_lcpl(void) {
    hid_t list = H5Pcreate(H5P_LINK_CREATE);
    if (list < 0) return list;
    if (H5Pset_create_intermediate_group(list, 1) < 0) {
        H5Pclose(list);
        return -1;
    }
    return list;
}

graft_h5_kind graft_h5_object_kind(int64_t loc, const char *name) {
    size_t length = strlen(name);
    char *prefix = malloc(length + 1);
    if (length == 0 || prefix == NULL) {
        free(prefix);
        return GRAFT_H5_MISSING;
    }
    // Check every link along the path first: H5Oopen on a path through a
    // missing group is an error rather than a "no".
    for (size_t end = 1; end <= length; end++) {
        if ((end < length && name[end] != '/') || name[end - 1] == '/') continue;
        memcpy(prefix, name, end);
        prefix[end] = '\0';
        if (H5Lexists(loc, prefix, H5P_DEFAULT) <= 0) {
            free(prefix);
            return GRAFT_H5_MISSING;
        }
    }
    free(prefix);
    hid_t object = H5Oopen(loc, name, H5P_DEFAULT);
    if (object < 0) return GRAFT_H5_MISSING;
    H5I_type_t type = H5Iget_type(object);
    H5Oclose(object);
    switch (type) {
    case H5I_GROUP: return GRAFT_H5_GROUP;
    case H5I_DATASET: return GRAFT_H5_DATASET;
    default: return GRAFT_H5_OTHER;
    }
}

typedef struct {
    graft_h5_name_callback report;
    void *context;
} name_sink;

// H5Ovisit's callback takes H5O_info2_t from HDF5 1.12 on.
#if H5_VERSION_GE(1, 12, 0)
typedef H5O_info2_t object_info;
#define VISIT_OBJECTS H5Ovisit3
#else
typedef H5O_info_t object_info;
#define VISIT_OBJECTS H5Ovisit2
#endif

static herr_t report_dataset(hid_t object, const char *name, const object_info *info, void *data) {
    name_sink *sink = data;
    if (info->type == H5O_TYPE_DATASET) sink->report(name, sink->context);
    (void)object;
    return 0;
}

int graft_h5_visit_datasets(int64_t loc, graft_h5_name_callback report, void *context) {
    name_sink sink = {report, context};
    return VISIT_OBJECTS(loc, H5_INDEX_NAME, H5_ITER_INC, report_dataset, &sink, H5O_INFO_BASIC);
}

static herr_t report_attribute(hid_t object, const char *name, const H5A_info_t *info, void *data) {
    name_sink *sink = data;
    sink->report(name, sink->context);
    (void)object;
    (void)info;
    return 0;
}

int graft_h5_visit_attributes(int64_t loc, graft_h5_name_callback report, void *context) {
    name_sink sink = {report, context};
    return H5Aiterate2(loc, H5_INDEX_NAME, H5_ITER_INC, NULL, report_attribute, &sink);
}
