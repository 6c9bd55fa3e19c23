"""Small infrastructure the rest of the package stands on: atomic writes and staged folders
(:mod:`.atomic`), typed JSON settings files (:mod:`.jsonfile`), the run-folder lock
(:mod:`.lock`), the one device helper (:mod:`.device`) and lazy package exports (:mod:`.lazy`).
Nothing here knows about Wave-GMS."""
