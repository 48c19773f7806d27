"""The sink side: storage backends, file writers, the lake's layout and the partition manifest."""
