# cmake -P script: the bad and borrowed input files of pare-compress's CLI tests, made fresh in DIR.
# Variables: DIR (made empty first), DATA (PARE_DATA_DIR: models/stories260K.bin, .gguf, tok512.bin).
# Files: empty.gguf (0 bytes), dir.gguf/ (a directory), not_gguf.gguf (text), tok3.bin (a 3-byte
# tokenizer), empty.txt, blank.txt (blank lines only), textdir/, model.bin / model.gguf (copies of
# stories260K that tests may try to overwrite), link.gguf (symbolic link to model.bin), hard.gguf (hard
# link to model.bin), noperm/tok512.bin (no permissions).
file(REMOVE_RECURSE "${DIR}")
file(MAKE_DIRECTORY "${DIR}" "${DIR}/dir.gguf" "${DIR}/textdir")
file(WRITE "${DIR}/empty.gguf" "")
file(WRITE "${DIR}/not_gguf.gguf" "not a GGUF file, just text\n")
file(WRITE "${DIR}/tok3.bin" "abc")
file(WRITE "${DIR}/empty.txt" "")
file(WRITE "${DIR}/blank.txt" "\n  \n\t\n\n")
configure_file("${DATA}/models/stories260K.bin" "${DIR}/model.bin" COPYONLY)
configure_file("${DATA}/models/stories260K.gguf" "${DIR}/model.gguf" COPYONLY)
file(CREATE_LINK "model.bin" "${DIR}/link.gguf" SYMBOLIC)
file(CREATE_LINK "${DIR}/model.bin" "${DIR}/hard.gguf")
# noperm/tok512.bin: no read permission for anyone (root reads it all the same).
file(COPY "${DATA}/models/tok512.bin" DESTINATION "${DIR}/noperm" FILE_PERMISSIONS OWNER_EXECUTE)
