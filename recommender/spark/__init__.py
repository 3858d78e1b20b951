"""The build on Apache Spark: the two jobs that outgrow one machine, writing the local path's artifacts.

    session.py     a SparkSession for a master URL (local[*], spark://host:7077, …), checkpoints on shared storage
    als.py         interactions read by Spark from the catalogue's parquet cache, weighted as the local path
                   does, MLlib ALS (implicitPrefs) → factors in catalogue code order → the `collab` artifact
    embeddings.py  the catalogue embedding as a mapInPandas job (one model per executor process, CUDA when
                   the executor has it) → the chunks the local job resumes from → the `embeddings` artifact

Everything downstream (FAISS, HNSW, the app, the CLI) opens the results unchanged. pyspark is an optional
dependency (requirements-spark.txt); nothing here is imported unless `build --engine spark` is asked for.
"""
