/* HDF5 through libhdf5, in the process that runs it: zquant runs it only in
 * the helper process of hdf5_isolated.c, because libhdf5 can crash on a
 * crafted file. Every float dataset is a tensor named by its path ("/a/b/c"
 * becomes "a.b.c"). HDF5 converts on read: h5py's float16 (an IEEE half
 * declared as a custom float type), float32 and float64 all arrive as
 * native float. The serial library is not thread-safe: reads take a lock. */
#include <hdf5.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "io/source_impl.h"

#define CONFIG_LIMIT (16u << 20)

typedef struct {
    hid_t file;
    char **paths; /* dataset path of each tensor */
    pthread_mutex_t lock;
} h5_impl;

typedef struct {
    zq_source *src;
    h5_impl *im;
    zq_error *err;
    zq_status st;
} visit_ctx;

static zq_status add_dataset(visit_ctx *cx, hid_t ds, const char *path)
{
    zq_source *src = cx->src;
    hid_t type = H5Dget_type(ds);
    hid_t space = H5Dget_space(ds);
    zq_status st = ZQ_OK;
    if (type < 0 || space < 0) {
        st = zq_fail(cx->err, ZQ_ERR_FORMAT, "'%s': dataset '%s': cannot read its type", src->path, path);
        goto out;
    }
    if (H5Tget_class(type) != H5T_FLOAT) {
        st = zq_fail(cx->err, ZQ_ERR_FORMAT,
                     "'%s': dataset '%s': not a float dataset (zquant reads float16, float32 and float64)",
                     src->path, path);
        goto out;
    }
    size_t size = H5Tget_size(type);
    zq_dtype dt = size == 2 ? ZQ_DT_F16 : size == 4 ? ZQ_DT_F32 : size == 8 ? ZQ_DT_F64 : (zq_dtype)-1;
    if ((int)dt < 0) {
        st = zq_fail(cx->err, ZQ_ERR_FORMAT, "'%s': dataset '%s': %zu-byte floats are not supported", src->path,
                     path, size);
        goto out;
    }
    int ndim = H5Sget_simple_extent_ndims(space);
    if (ndim < 0 || ndim > ZQ_MAX_DIMS) {
        st = zq_fail(cx->err, ZQ_ERR_FORMAT, "'%s': dataset '%s': unsupported dataspace", src->path, path);
        goto out;
    }
    hsize_t dims[ZQ_MAX_DIMS];
    int64_t shape[ZQ_MAX_DIMS];
    H5Sget_simple_extent_dims(space, dims, NULL);
    for (int d = 0; d < ndim; d++) shape[d] = (int64_t)dims[d];
    if (!zq_utf8_valid(path, strlen(path))) { /* names go into .zq metadata and --json output */
        st = zq_fail(cx->err, ZQ_ERR_FORMAT, "'%s': a dataset name is not valid UTF-8", src->path);
        goto out;
    }
    char *name = strdup(path[0] == '/' ? path + 1 : path);
    if (!name) { st = zq_fail(cx->err, ZQ_ERR_NOMEM, "out of memory"); goto out; }
    for (char *c = name; *c; c++)
        if (*c == '/') *c = '.';
    size_t index;
    st = zq_source_add(src, name, dt, ndim, shape, &index, cx->err);
    free(name);
    if (st != ZQ_OK) goto out;
    char **paths = realloc(cx->im->paths, (index + 1) * sizeof *paths);
    if (!paths) { st = zq_fail(cx->err, ZQ_ERR_NOMEM, "out of memory"); goto out; }
    cx->im->paths = paths;
    paths[index] = strdup(path);
    if (!paths[index]) st = zq_fail(cx->err, ZQ_ERR_NOMEM, "out of memory");
out:
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    return st;
}

static herr_t visit(hid_t obj, const char *name, const H5O_info_t *info, void *data)
{
    visit_ctx *cx = data;
    if (info->type != H5O_TYPE_DATASET) return 0;
    hid_t ds = H5Dopen2(obj, name, H5P_DEFAULT);
    if (ds < 0) {
        cx->st = zq_fail(cx->err, ZQ_ERR_FORMAT, "'%s': dataset '%s': cannot open", cx->src->path, name);
        return -1;
    }
    cx->st = add_dataset(cx, ds, name);
    H5Dclose(ds);
    return cx->st == ZQ_OK ? 0 : -1;
}

static zq_status read_h5(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, uint64_t col0, uint64_t ncols,
                         float *out, zq_error *err)
{
    h5_impl *im = src->impl;
    const zq_tensor_info *t = &src->tensors[i];
    zq_status st = ZQ_OK;
    pthread_mutex_lock(&im->lock);
    hid_t ds = H5Dopen2(im->file, im->paths[i], H5P_DEFAULT);
    hid_t fspace = ds >= 0 ? H5Dget_space(ds) : -1;
    /* the block of the dataset seen as [rows, cols] */
    hsize_t start[2] = {row0, col0}, count[2] = {nrows, ncols};
    hid_t mspace = H5Screate_simple(2, count, NULL);
    if (ds < 0 || fspace < 0 || mspace < 0) {
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': dataset '%s': cannot select a block", src->path, im->paths[i]);
    } else if (t->ndim == 2 || t->ndim == 1 || t->ndim == 0) {
        hid_t sel = fspace;
        if (t->ndim == 2) H5Sselect_hyperslab(sel, H5S_SELECT_SET, start, NULL, count, NULL);
        else {
            hsize_t s1 = col0, c1 = ncols;
            if (t->ndim == 1) H5Sselect_hyperslab(sel, H5S_SELECT_SET, &s1, NULL, &c1, NULL);
        }
        if (H5Dread(ds, H5T_NATIVE_FLOAT, mspace, sel, H5P_DEFAULT, out) < 0)
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': dataset '%s': read failed", src->path, im->paths[i]);
    } else {
        /* N-D: read whole rows (contiguous runs of the flattened tensor) */
        float *tmp = malloc(nrows * t->cols * sizeof *tmp);
        hsize_t fstart[ZQ_MAX_DIMS] = {row0}, fcount[ZQ_MAX_DIMS] = {nrows}, mcount = nrows * t->cols;
        for (int d = 1; d < t->ndim; d++) fcount[d] = (hsize_t)t->shape[d];
        hid_t m1 = H5Screate_simple(1, &mcount, NULL);
        if (!tmp || m1 < 0 || H5Sselect_hyperslab(fspace, H5S_SELECT_SET, fstart, NULL, fcount, NULL) < 0 ||
            H5Dread(ds, H5T_NATIVE_FLOAT, m1, fspace, H5P_DEFAULT, tmp) < 0)
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': dataset '%s': read failed", src->path, im->paths[i]);
        else
            for (uint64_t r = 0; r < nrows; r++) memcpy(out + r * ncols, tmp + r * t->cols + col0, ncols * 4);
        if (m1 >= 0) H5Sclose(m1);
        free(tmp);
    }
    if (mspace >= 0) H5Sclose(mspace);
    if (fspace >= 0) H5Sclose(fspace);
    if (ds >= 0) H5Dclose(ds);
    pthread_mutex_unlock(&im->lock);
    return st;
}

static void close_h5(zq_source *src)
{
    h5_impl *im = src->impl;
    if (!im) return;
    for (size_t k = 0; k < src->count; k++) free(im->paths ? im->paths[k] : NULL);
    free(im->paths);
    if (im->file >= 0) H5Fclose(im->file);
    pthread_mutex_destroy(&im->lock);
    free(im);
    src->impl = NULL;
}

static const zq_source_ops h5_ops = {read_h5, NULL, close_h5, NULL, NULL, NULL, NULL, NULL};

/* The config may travel inside the file as a string attribute "config". */
static zq_status read_config_attr(zq_source *src, h5_impl *im, zq_error *err)
{
    if (H5Aexists(im->file, "config") <= 0) return ZQ_OK;
    hid_t a = H5Aopen(im->file, "config", H5P_DEFAULT);
    hid_t type = a >= 0 ? H5Aget_type(a) : -1;
    zq_status st = ZQ_OK;
    if (type < 0 || H5Tget_class(type) != H5T_STRING) {
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': attribute 'config' is not a string", src->path);
    } else if (H5Tis_variable_str(type) > 0) {
        char *s = NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(type));
        if (H5Aread(a, mt, &s) < 0 || !s) st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': cannot read attribute 'config'", src->path);
        else if (!(src->config = strdup(s))) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        if (s) H5free_memory(s);
        H5Tclose(mt);
    } else if (H5Tget_size(type) > CONFIG_LIMIT) {
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': attribute 'config' is larger than %u bytes", src->path, CONFIG_LIMIT);
    } else {
        size_t n = H5Tget_size(type);
        src->config = calloc(n + 1, 1);
        if (!src->config) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        else if (H5Aread(a, type, src->config) < 0)
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': cannot read attribute 'config'", src->path);
    }
    if (type >= 0) H5Tclose(type);
    if (a >= 0) H5Aclose(a);
    return st;
}

zq_status zq_hdf5_open_here(zq_source *src, const char *file, zq_error *err)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors come back as values, not stderr noise */
    h5_impl *im = calloc(1, sizeof *im);
    if (!im) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&im->lock, NULL);
    im->file = -1;
    src->impl = im;
    src->ops = &h5_ops;
    if (H5Fis_hdf5(file) <= 0) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': not an HDF5 file", file);
    im->file = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (im->file < 0) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': cannot open as HDF5", file);
    visit_ctx cx = {src, im, err, ZQ_OK};
    if (H5Ovisit2(im->file, H5_INDEX_NAME, H5_ITER_INC, visit, &cx, H5O_INFO_BASIC) < 0 && cx.st == ZQ_OK)
        cx.st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': cannot list its datasets", file);
    if (cx.st != ZQ_OK) return cx.st;
    return read_config_attr(src, im, err);
}
