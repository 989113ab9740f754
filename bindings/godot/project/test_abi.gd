# Headless test of the ABI check (godot3-server --path . -s test_abi.gd), run with bin/ holding a
# libchord_godot built for ABI version 999 (test/abi_mismatch.c): load() refuses with a message that
# names both that version and libchord's (CHORD_TEST_ABI), and the object stays usable. Exits 0 when
# it does.
extends SceneTree

func _init():
	var session = load("res://chord_session.gdns").new()
	var err = session.load(OS.get_environment("CHORD_TEST_MODEL"))
	var lib = "ABI version " + OS.get_environment("CHORD_TEST_ABI")
	if err.find("ABI version 999") < 0 or err.find(lib) < 0:
		print("FAIL: load() across ABI versions returned '", err, "'")
		quit(1)
		return
	if session.start("Hello", 4, 0.0) != "load a model first":
		print("FAIL: start() after a refused load")
		quit(1)
		return
	print("ok: ", err)
	quit(0)
