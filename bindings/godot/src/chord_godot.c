/*
 * chord in Godot 3 (GDNative, C): a NativeScript class `ChordSession` (a Reference) over libchord.
 *
 *   load(path: String) -> String          "" when the model loaded, else the error message
 *   start(prompt: String, max_tokens: int, temperature: float) -> String
 *                                          starts a background generation ("" or the error)
 *   poll() -> Array                       the events ready now, never waiting: dictionaries
 *                                          {"type": "text", "text": ..., "token": id},
 *                                          {"type": "done", "text": ..., "reason": CHORD_STOP_*},
 *                                          {"type": "error", "text": message, "status": CHORD_E_*}
 *   cancel()                              stops the generation (its end event is then an error)
 *
 * Poll-only on purpose: no chord thread ever calls into Godot, so a GDScript node polls in
 * _process and emits its signals on the main thread (callbacks from other threads crash Godot:
 * godot #81148). Freeing the object mid-generation cancels and joins chord's worker.
 */
#include <chord.h>
#include <gdnative_api_struct.gen.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const godot_gdnative_core_api_struct *api;
static const godot_gdnative_ext_nativescript_api_struct *ns;

typedef struct {
    chord_model *model;
    chord_session *session;
    int running; /* a generation started whose end has not been polled */
} Instance;

/* A Godot String from UTF-8 bytes, wrapped in a Variant. */
static godot_variant variant_str(const char *text, size_t len) {
    godot_string s = api->godot_string_chars_to_utf8_with_len(text, (godot_int)len);
    godot_variant v;
    api->godot_variant_new_string(&v, &s);
    api->godot_string_destroy(&s);
    return v;
}

static godot_variant variant_cstr(const char *text) { return variant_str(text, strlen(text)); }

/* The error's message as a Variant, freeing the error; "" for success. */
static godot_variant result(chord_status st, chord_error *err) {
    godot_variant v = variant_cstr(st == CHORD_OK ? "" : err ? chord_error_message(err) : chord_status_name(st));
    chord_error_free(err);
    return v;
}

/* A Variant argument as a NUL-terminated UTF-8 copy (free it). */
static char *arg_utf8(godot_variant *arg, size_t *len) {
    godot_string s = api->godot_variant_as_string(arg);
    godot_char_string cs = api->godot_string_utf8(&s);
    *len = (size_t)api->godot_char_string_length(&cs);
    char *out = malloc(*len + 1);
    if (out) {
        memcpy(out, api->godot_char_string_get_data(&cs), *len);
        out[*len] = 0;
    }
    api->godot_char_string_destroy(&cs);
    api->godot_string_destroy(&s);
    return out;
}

static void dict_set(godot_dictionary *d, const char *key, godot_variant *value) {
    godot_variant k = variant_cstr(key);
    api->godot_dictionary_set(d, &k, value);
    api->godot_variant_destroy(&k);
    api->godot_variant_destroy(value);
}

static void dict_set_int(godot_dictionary *d, const char *key, int64_t value) {
    godot_variant v;
    api->godot_variant_new_int(&v, value);
    dict_set(d, key, &v);
}

static void *cs_new(godot_object *obj, void *method_data) {
    (void)obj;
    (void)method_data;
    return calloc(1, sizeof(Instance));
}

static void cs_delete(godot_object *obj, void *method_data, void *user_data) {
    (void)obj;
    (void)method_data;
    Instance *in = user_data;
    chord_session_free(in->session); /* cancels and joins a running generation */
    chord_model_free(in->model);
    free(in);
}

static godot_variant cs_load(godot_object *obj, void *md, void *user_data, int n, godot_variant **args) {
    (void)obj;
    (void)md;
    Instance *in = user_data;
    if (n < 1) return variant_cstr("load(path) needs a path");
    size_t len = 0;
    char *path = arg_utf8(args[0], &len);
    chord_session_free(in->session);
    chord_model_free(in->model);
    in->session = NULL;
    in->model = NULL;
    in->running = 0;
    chord_error *err = NULL;
    chord_status st = chord_abi_version() == CHORD_ABI_VERSION ? CHORD_OK : CHORD_E_UNSUPPORTED;
    if (st != CHORD_OK) {
        free(path);
        char msg[160];
        snprintf(msg, sizeof msg, "libchord has ABI version %u but the Godot library was built for ABI version %u",
                 chord_abi_version(), (unsigned)CHORD_ABI_VERSION);
        return variant_cstr(msg);
    }
    st = chord_model_load(path, len, NULL, &in->model, &err);
    free(path);
    if (st == CHORD_OK) {
        chord_error_free(err);
        err = NULL;
        st = chord_session_new(in->model, NULL, &in->session, &err);
    }
    return result(st, err);
}

static godot_variant cs_start(godot_object *obj, void *md, void *user_data, int n, godot_variant **args) {
    (void)obj;
    (void)md;
    Instance *in = user_data;
    if (!in->session) return variant_cstr("load a model first");
    if (n < 1) return variant_cstr("start(prompt, max_tokens, temperature) needs a prompt");
    size_t len = 0;
    char *prompt = arg_utf8(args[0], &len);
    chord_generate_params *p = NULL;
    chord_error *err = NULL;
    chord_status st = chord_generate_params_new(&p, &err);
    if (st == CHORD_OK && n >= 2) st = chord_generate_params_set_max_tokens(p, (uint32_t)api->godot_variant_as_int(args[1]), &err);
    if (st == CHORD_OK && n >= 3) st = chord_generate_params_set_temperature(p, (float)api->godot_variant_as_real(args[2]), &err);
    if (st == CHORD_OK) st = chord_session_reset(in->session, &err);
    if (st == CHORD_OK)
        st = chord_session_append_text(in->session, prompt, len, CHORD_APPEND_ADD_SPECIAL | CHORD_APPEND_PARSE_SPECIAL, NULL, &err);
    if (st == CHORD_OK) st = chord_session_generate_start(in->session, p, &err);
    if (st == CHORD_OK) in->running = 1;
    chord_generate_params_free(p);
    free(prompt);
    return result(st, err);
}

static godot_variant cs_poll(godot_object *obj, void *md, void *user_data, int n, godot_variant **args) {
    (void)obj;
    (void)md;
    (void)n;
    (void)args;
    Instance *in = user_data;
    godot_array events;
    api->godot_array_new(&events);
    static char buf[4096];
    while (in->session && in->running) {
        uint32_t kind = 0, detail = 0;
        chord_token tok = 0;
        size_t len = 0;
        chord_error *err = NULL;
        chord_status st = chord_session_poll(in->session, 0, &kind, &tok, &detail, buf, sizeof buf, &len, &err);
        if (st != CHORD_OK) { /* a text longer than the buffer: give the error, end the stream */
            kind = CHORD_EVENT_ERROR;
            detail = st;
            len = strlen(chord_error_message(err));
            memcpy(buf, chord_error_message(err), len < sizeof buf ? len : sizeof buf - 1);
            in->running = 0;
        }
        chord_error_free(err);
        if (kind == CHORD_EVENT_NONE) break;
        godot_dictionary d;
        api->godot_dictionary_new(&d);
        godot_variant type = variant_cstr(kind == CHORD_EVENT_TOKEN ? "text" : kind == CHORD_EVENT_DONE ? "done" : "error");
        dict_set(&d, "type", &type);
        godot_variant text = variant_str(buf, len < sizeof buf ? len : sizeof buf);
        dict_set(&d, "text", &text);
        if (kind == CHORD_EVENT_TOKEN) dict_set_int(&d, "token", tok);
        if (kind == CHORD_EVENT_DONE) dict_set_int(&d, "reason", detail);
        if (kind == CHORD_EVENT_ERROR) dict_set_int(&d, "status", detail);
        godot_variant dv;
        api->godot_variant_new_dictionary(&dv, &d);
        api->godot_array_append(&events, &dv);
        api->godot_variant_destroy(&dv);
        api->godot_dictionary_destroy(&d);
        if (kind != CHORD_EVENT_TOKEN) in->running = 0;
    }
    godot_variant out;
    api->godot_variant_new_array(&out, &events);
    api->godot_array_destroy(&events);
    return out;
}

static godot_variant cs_cancel(godot_object *obj, void *md, void *user_data, int n, godot_variant **args) {
    (void)obj;
    (void)md;
    (void)n;
    (void)args;
    Instance *in = user_data;
    if (in->session) chord_session_cancel(in->session);
    godot_variant v;
    api->godot_variant_new_nil(&v);
    return v;
}

void GDN_EXPORT godot_gdnative_init(godot_gdnative_init_options *o) {
    api = o->api_struct;
    for (unsigned i = 0; i < api->num_extensions; i++) {
        if (api->extensions[i]->type == GDNATIVE_EXT_NATIVESCRIPT)
            ns = (const godot_gdnative_ext_nativescript_api_struct *)api->extensions[i];
    }
}

void GDN_EXPORT godot_gdnative_terminate(godot_gdnative_terminate_options *o) {
    (void)o;
    api = NULL;
    ns = NULL;
}

void GDN_EXPORT godot_nativescript_init(void *handle) {
    godot_instance_create_func create = {NULL, NULL, NULL};
    create.create_func = &cs_new;
    godot_instance_destroy_func destroy = {NULL, NULL, NULL};
    destroy.destroy_func = &cs_delete;
    ns->godot_nativescript_register_class(handle, "ChordSession", "Reference", create, destroy);
    godot_method_attributes attr = {GODOT_METHOD_RPC_MODE_DISABLED};
    struct {
        const char *name;
        godot_variant (*fn)(godot_object *, void *, void *, int, godot_variant **);
    } methods[] = {{"load", cs_load}, {"start", cs_start}, {"poll", cs_poll}, {"cancel", cs_cancel}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        godot_instance_method m = {NULL, NULL, NULL};
        m.method = methods[i].fn;
        ns->godot_nativescript_register_method(handle, "ChordSession", methods[i].name, attr, m);
    }
}
